/**
 * The dashboard's access file (DASHBOARD_CONFIG, JSON or YAML; docs/dashboard.md): the sites it
 * shows with their time zones, the accounts that log in and the sites each may see, API keys
 * and shared links. Secrets are stored only as hashes made by `sessionizer dashboard
 * hash-secret` (src/dashboard/secret-hash.ts). Read and validated once at start-up; every
 * problem is one line naming where it is.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InvalidConfigError } from '../errors';
import { isSecretHash } from './secret-hash';

/** The event rules' site id: 1-64 of [a-z0-9._-], starting with a letter or digit. */
export const SITE_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const siteId = z.string().regex(SITE_ID, 'a site id is 1-64 of a-z 0-9 . _ -, starting with a letter or digit');
const secretHash = z.string().refine(isSecretHash, 'not a hash made by `sessionizer dashboard hash-secret`');
/** A list of site ids, or ["*"]: every site in the file. */
const siteList = z.array(z.union([siteId, z.literal('*')])).min(1);

const siteSchema = z.strictObject({
  id: siteId,
  timezone: z.string().refine(isTimeZone, 'not an IANA time zone (for example Europe/Berlin)').default('UTC'),
  name: z.string().min(1).optional(),
});

const fileSchema = z.strictObject({
  sites: z.array(siteSchema).min(1),
  accounts: z
    .array(z.strictObject({ email: z.string().email(), password_hash: secretHash, sites: siteList }))
    .default([]),
  api_keys: z.array(z.strictObject({ name: z.string().min(1), key_hash: secretHash, sites: siteList })).default([]),
  shared_links: z.array(z.strictObject({ name: z.string().min(1), site: siteId, token_hash: secretHash })).default([]),
});

export interface SiteConfig {
  id: string;
  /** IANA time zone: days, weeks and months of this site's figures begin at its midnight. */
  timezone: string;
  /** Shown on the pages; the id when absent. */
  name: string;
}

export interface AccountConfig {
  /** Lower case: logins compare e-mail addresses case-insensitively. */
  email: string;
  passwordHash: string;
  /** Site ids, "*" expanded. */
  sites: string[];
}

export interface ApiKeyConfig {
  name: string;
  keyHash: string;
  sites: string[];
}

export interface SharedLinkConfig {
  name: string;
  site: string;
  tokenHash: string;
}

export interface DashboardAccess {
  sites: SiteConfig[];
  accounts: AccountConfig[];
  apiKeys: ApiKeyConfig[];
  sharedLinks: SharedLinkConfig[];
}

/** Reads and validates the file at `path`; throws InvalidConfigError with one line per problem. */
export function loadDashboardAccess(path: string): DashboardAccess {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidConfigError(`invalid configuration: DASHBOARD_CONFIG: cannot read ${path}: ${(err as Error).message}`);
  }
  return parseDashboardAccess(text, path);
}

/** Parses the file's text (JSON is YAML too, but a .json file gets JSON's error messages). */
export function parseDashboardAccess(text: string, source = 'DASHBOARD_CONFIG'): DashboardAccess {
  let raw: unknown;
  try {
    raw = source.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new InvalidConfigError(`invalid configuration: ${source}: not valid ${source.endsWith('.json') ? 'JSON' : 'YAML or JSON'}: ${firstLine((err as Error).message)}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new InvalidConfigError(`invalid configuration: ${source}: ${problems.join('; ')}`);
  }
  const file = parsed.data;
  const problems: string[] = [];
  const ids = file.sites.map((s) => s.id);
  const known = new Set(ids);
  for (const id of ids.filter((id, i) => ids.indexOf(id) !== i)) problems.push(`sites: '${id}' is listed twice`);
  const expand = (where: string, list: string[]): string[] => {
    if (list.includes('*')) return [...ids];
    for (const id of list) if (!known.has(id)) problems.push(`${where}: site '${id}' is not in sites`);
    return [...new Set(list)];
  };
  const emails = new Set<string>();
  const accounts = file.accounts.map((a, i) => {
    const email = a.email.toLowerCase();
    if (emails.has(email)) problems.push(`accounts.${i}: ${email} is listed twice`);
    emails.add(email);
    return { email, passwordHash: a.password_hash, sites: expand(`accounts.${i}.sites`, a.sites) };
  });
  const apiKeys = file.api_keys.map((k, i) => ({ name: k.name, keyHash: k.key_hash, sites: expand(`api_keys.${i}.sites`, k.sites) }));
  const sharedLinks = file.shared_links.map((l, i) => {
    if (!known.has(l.site)) problems.push(`shared_links.${i}.site: site '${l.site}' is not in sites`);
    return { name: l.name, site: l.site, tokenHash: l.token_hash };
  });
  if (problems.length > 0) throw new InvalidConfigError(`invalid configuration: ${source}: ${problems.join('; ')}`);
  return {
    sites: file.sites.map((s) => ({ id: s.id, timezone: s.timezone, name: s.name ?? s.id })),
    accounts,
    apiKeys,
    sharedLinks,
  };
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
