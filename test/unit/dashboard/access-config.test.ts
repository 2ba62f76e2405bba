import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDashboardAccess } from '../../../src/dashboard/config';
import { loadConfig } from '../../../src/config';
import { InvalidConfigError } from '../../../src/errors';

const HASH = '$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

describe('the access file', () => {
  it('reads YAML, expands "*" to every site, lower-cases e-mail addresses and fills defaults', () => {
    const access = parseDashboardAccess(`
sites:
  - id: shop
    timezone: Europe/Berlin
    name: The Shop
  - id: blog
accounts:
  - email: Ann@Example.com
    password_hash: "${HASH}"
    sites: ["*"]
api_keys:
  - name: ci
    key_hash: "${HASH}"
    sites: [blog]
shared_links:
  - name: public
    site: shop
    token_hash: "${HASH}"
`);
    expect(access.sites).toEqual([
      { id: 'shop', timezone: 'Europe/Berlin', name: 'The Shop' },
      { id: 'blog', timezone: 'UTC', name: 'blog' },
    ]);
    expect(access.accounts).toEqual([{ email: 'ann@example.com', passwordHash: HASH, sites: ['shop', 'blog'] }]);
    expect(access.apiKeys).toEqual([{ name: 'ci', keyHash: HASH, sites: ['blog'] }]);
    expect(access.sharedLinks).toEqual([{ name: 'public', site: 'shop', tokenHash: HASH }]);
  });

  it.each([
    ['an unknown site in an account', { sites: [{ id: 'shop' }], accounts: [{ email: 'a@b.co', password_hash: HASH, sites: ['nope'] }] }, "accounts.0.sites: site 'nope' is not in sites"],
    ['a bad time zone', { sites: [{ id: 'shop', timezone: 'Mars/Olympus' }] }, 'sites.0.timezone: not an IANA time zone'],
    ['a password in clear', { sites: [{ id: 'shop' }], accounts: [{ email: 'a@b.co', password_hash: 'hunter2', sites: ['shop'] }] }, 'accounts.0.password_hash: not a hash made by'],
    ['an unknown key', { sites: [{ id: 'shop' }], users: [] }, 'users'],
    ['a site listed twice', { sites: [{ id: 'shop' }, { id: 'shop' }] }, "sites: 'shop' is listed twice"],
    ['a bad site id', { sites: [{ id: 'Shop!' }] }, 'sites.0.id'],
    ['a shared link to an unknown site', { sites: [{ id: 'shop' }], shared_links: [{ name: 'x', site: 'blog', token_hash: HASH }] }, "shared_links.0.site: site 'blog' is not in sites"],
  ])('refuses %s with one line naming it', (_name, file, message) => {
    let error: unknown;
    try {
      parseDashboardAccess(JSON.stringify(file), 'access.json');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).toContain('access.json');
    expect((error as Error).message).not.toContain('\n');
  });

  it('names a file that is not JSON', () => {
    expect(() => parseDashboardAccess('{"sites": [', 'access.json')).toThrow(/access\.json: not valid JSON/);
  });
});

describe('DASHBOARD_* in the environment', () => {
  it('has defaults, and HTTP_PORT 9466 for the dashboard unless HTTP_PORT is set', () => {
    const config = loadConfig({});
    expect(config.dashboard).toMatchObject({ port: 8090, host: '0.0.0.0', httpPort: 9466, sessionTtlMs: 168 * 3_600_000, loginAttemptsPerMinute: 10, trustedProxies: [] });
    expect(config.http.port).toBe(9464);
    expect(loadConfig({ HTTP_PORT: '9999' }).dashboard.httpPort).toBe(9999);
  });

  it('takes the session secret from a file, and refuses a short one', () => {
    expect(() => loadConfig({ DASHBOARD_SESSION_SECRET: 'short' })).toThrow(/DASHBOARD_SESSION_SECRET: must be at least 32 characters/);
    const file = join(tmpdir(), `dash-secret-${process.pid}`);
    writeFileSync(file, `${'s'.repeat(40)}\n`);
    expect(loadConfig({ DASHBOARD_SESSION_SECRET_FILE: file }).dashboard.sessionSecret).toBe('s'.repeat(40));
  });
});
