/**
 * Finds a second statement in a query text. The ClickHouse server takes one statement per HTTP
 * request, while chdb would happily run `A; B`: without this check a test could pass locally
 * and fail against a real server.
 *
 * A small scanner, not a parser: it skips string literals ('...'), quoted identifiers ("..." and
 * `...`) and comments (--, #, /* *\/), and stops at the inline data of `INSERT ... FORMAT X`,
 * which is data, not SQL.
 */

const TRAILING_FORMAT = /\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$/i;

/** The `FORMAT name` clause that ends a statement: the name and where it starts; null without one. */
export function trailingFormat(sql: string): { name: string; at: number } | null {
  const m = TRAILING_FORMAT.exec(sql);
  return m ? { name: m[1] as string, at: m.index } : null;
}

/** Position of the `;` that starts a second statement, or -1 when there is only one. */
export function secondStatementAt(sql: string): number {
  const isInsert = /^\s*INSERT\b/i.test(sql);
  let i = 0;
  let previousWord = '';
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(sql, i, c);
    } else if (c === '-' && sql[i + 1] === '-') {
      i = skipLine(sql, i);
    } else if (c === '#') {
      i = skipLine(sql, i);
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === ';') {
      if (!onlyCommentsAndSpace(sql.slice(i + 1))) return i;
      return -1;
    } else if (/[A-Za-z_]/.test(c)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i))?.[0] ?? c;
      // INSERT ... FORMAT Name: everything after the format name is rows.
      if (isInsert && previousWord.toUpperCase() === 'FORMAT') return -1;
      previousWord = word;
      i += word.length;
    } else {
      i += 1;
    }
  }
  return -1;
}

function skipQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '\\') i += 2;
    else if (c === quote && sql[i + 1] === quote) i += 2; // doubled quote
    else if (c === quote) return i + 1;
    else i += 1;
  }
  return sql.length;
}

function skipLine(sql: string, start: number): number {
  const end = sql.indexOf('\n', start);
  return end < 0 ? sql.length : end + 1;
}

function onlyCommentsAndSpace(rest: string): boolean {
  const stripped = rest
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(--|#)[^\n]*/g, '')
    .replace(/;/g, '');
  return stripped.trim() === '';
}
