/**
 * Who is asking, and what they may see: an account (logged in with the cookie), a shared link
 * (`?auth=TOKEN`, read-only, one site) or an API key (`Authorization: Bearer KEY`). Built from
 * the access file; holds no state but a cache of secrets already verified.
 *
 * Checking a secret against its scrypt hash costs about 0.1 s, too slow for every API call, so
 * a secret that verified once is remembered by its SHA-256 (per process: nothing to share
 * between replicas, and a restart only costs one slow check per key again). Wrong secrets are
 * never cached; the login route is rate-limited.
 */
import { createHash } from 'node:crypto';
import { SiteNotFoundError } from '../errors';
import type { AccountConfig, DashboardAccess } from './config';
import { verifySecret } from './secret-hash';
import { passwordFingerprint, signSessionToken, verifySessionToken } from './session-token';

export interface Viewer {
  kind: 'account' | 'share' | 'api';
  /** The account's e-mail address (kind account). */
  email?: string;
  /** Shared link or API key name. */
  name?: string;
  /** Site ids this viewer may see, "*" expanded. */
  sites: string[];
  readOnly: boolean;
}

export function canSee(viewer: Viewer | null, site: string): boolean {
  return viewer !== null && viewer.sites.includes(site);
}

/** Throws SiteNotFoundError unless the viewer may see `site`: unknown and forbidden look the same. */
export function requireSite(viewer: Viewer | null, site: string): void {
  if (!canSee(viewer, site)) throw new SiteNotFoundError(site);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export class ViewerResolver {
  private readonly verified = new Map<string, Viewer>();
  private readonly accounts: Map<string, AccountConfig>;

  constructor(
    private readonly access: DashboardAccess,
    private readonly sessionSecret: string,
    private readonly sessionTtlMs: number,
  ) {
    this.accounts = new Map(access.accounts.map((a) => [a.email, a]));
  }

  /** The viewer an API key stands for, or null. */
  async apiKey(key: string): Promise<Viewer | null> {
    return this.cached(`api:${sha256(key)}`, async () => {
      for (const entry of this.access.apiKeys) {
        if (await verifySecret(key, entry.keyHash)) return { kind: 'api', name: entry.name, sites: entry.sites, readOnly: true };
      }
      return null;
    });
  }

  /** The viewer of a shared link's token (it sees the link's one site), or null. */
  async sharedLink(token: string): Promise<Viewer | null> {
    return this.cached(`share:${sha256(token)}`, async () => {
      for (const link of this.access.sharedLinks) {
        if (await verifySecret(token, link.tokenHash)) {
          return { kind: 'share', name: link.name, sites: [link.site], readOnly: true };
        }
      }
      return null;
    });
  }

  /** Checks a login; on success returns the cookie value and its lifetime. */
  async login(email: string, password: string, now: number): Promise<{ token: string; maxAgeSeconds: number } | null> {
    const account = this.accounts.get(email.trim().toLowerCase());
    // An unknown address costs the same as a wrong password, so timing does not tell them apart.
    const hash = account?.passwordHash ?? DUMMY_HASH;
    const ok = await verifySecret(password, hash);
    if (!ok || !account) return null;
    const token = signSessionToken(this.sessionSecret, {
      email: account.email,
      expiresAt: now + this.sessionTtlMs,
      fingerprint: passwordFingerprint(account.passwordHash),
    });
    return { token, maxAgeSeconds: Math.floor(this.sessionTtlMs / 1000) };
  }

  /** The account of a session cookie, or null when it is forged, expired, or its account gone or changed. */
  session(token: string, now: number): Viewer | null {
    const claims = verifySessionToken(this.sessionSecret, token, now);
    if (!claims) return null;
    const account = this.accounts.get(claims.email);
    if (!account || passwordFingerprint(account.passwordHash) !== claims.fingerprint) return null;
    return { kind: 'account', email: account.email, sites: account.sites, readOnly: false };
  }

  private async cached(key: string, verify: () => Promise<Viewer | null>): Promise<Viewer | null> {
    const hit = this.verified.get(key);
    if (hit) return hit;
    const viewer = await verify();
    if (viewer) this.verified.set(key, viewer);
    return viewer;
  }
}

/** A hash of nothing anyone types (its salt and digest are arbitrary), verified for unknown addresses. */
const DUMMY_HASH = '$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
