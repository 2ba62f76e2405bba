import { hashSecret, isSecretHash, verifySecret } from '../../../src/dashboard/secret-hash';
import { passwordFingerprint, signSessionToken, verifySessionToken } from '../../../src/dashboard/session-token';

const FAST = { ln: 10, r: 8, p: 1 };

describe('secret hashes', () => {
  it('verify the secret they were made from, and nothing else', async () => {
    const hash = await hashSecret('correct horse', FAST);
    expect(isSecretHash(hash)).toBe(true);
    expect(hash).toMatch(/^\$scrypt\$ln=10,r=8,p=1\$/);
    await expect(verifySecret('correct horse', hash)).resolves.toBe(true);
    await expect(verifySecret('correct horsE', hash)).resolves.toBe(false);
    await expect(verifySecret('correct horse', 'not a hash')).resolves.toBe(false);
  });

  it('are salted: the same secret hashes differently each time', async () => {
    expect(await hashSecret('same', FAST)).not.toBe(await hashSecret('same', FAST));
  });

  it('default to scrypt N = 2^15, r = 8', async () => {
    const hash = await hashSecret('slow');
    expect(hash).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    await expect(verifySecret('slow', hash)).resolves.toBe(true);
  });
});

describe('session tokens', () => {
  const secret = 'x'.repeat(40);
  const claims = { email: 'ann@example.com', expiresAt: 2_000, fingerprint: passwordFingerprint('$scrypt$…') };

  it('carry their claims until they expire', () => {
    const token = signSessionToken(secret, claims);
    expect(verifySessionToken(secret, token, 1_999)).toEqual(claims);
    expect(verifySessionToken(secret, token, 2_000)).toBeNull();
  });

  it('are refused when signed with another secret or changed in any part', () => {
    const token = signSessionToken(secret, claims);
    expect(verifySessionToken('y'.repeat(40), token, 0)).toBeNull();
    const [version, payload, signature] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ e: 'root@example.com', x: 2_000, p: claims.fingerprint })).toString('base64url');
    expect(verifySessionToken(secret, `${version}.${forged}.${signature}`, 0)).toBeNull();
    expect(verifySessionToken(secret, `v2.${payload}.${signature}`, 0)).toBeNull();
    expect(verifySessionToken(secret, `${version}.${payload}.${signature.slice(1)}`, 0)).toBeNull();
    expect(verifySessionToken(secret, 'garbage', 0)).toBeNull();
  });
});

describe('sessionizer dashboard hash-secret', () => {
  it('hashes the secret on stdin without its trailing newline', async () => {
    const { Readable } = await import('node:stream');
    const { runHashSecret } = await import('../../../src/commands/dashboard-command');
    let printed = '';
    await runHashSecret({}, Readable.from([Buffer.from('pass word\n')]), (text) => (printed += text));
    const hash = printed.trim();
    await expect(verifySecret('pass word', hash)).resolves.toBe(true);
    await expect(verifySecret('pass word\n', hash)).resolves.toBe(false);
  });

  it('with --generate prints a new random secret and its hash', async () => {
    const { runHashSecret } = await import('../../../src/commands/dashboard-command');
    let printed = '';
    await runHashSecret({ generate: true }, undefined, (text) => (printed += text));
    const [secret, hash] = printed.trim().split('\n') as [string, string];
    expect(secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    await expect(verifySecret(secret, hash)).resolves.toBe(true);
  });

  it('refuses an empty stdin', async () => {
    const { Readable } = await import('node:stream');
    const { runHashSecret } = await import('../../../src/commands/dashboard-command');
    await expect(runHashSecret({}, Readable.from([]), () => undefined)).rejects.toThrow(/no secret on stdin/);
  });
});
