/**
 * The `--site` option of the commands that read or recalculate data: one site's name, checked
 * as events check theirs (src/events/visitor-key.ts), so a typo is a usage error, not an empty
 * result.
 */
import { InvalidArgumentError } from 'commander';
import { isValidSite } from '../events/visitor-key';

/** Commander parser for `--site`. */
export function parseSite(value: string): string {
  if (!isValidSite(value)) throw new InvalidArgumentError('expected a site: 1-64 characters of a-z 0-9 . _ -, starting with a letter or a digit');
  return value;
}
