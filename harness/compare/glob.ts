/**
 * Globs for cell and check names: `*` any run of characters, `?` one character, everything else literal
 * (check ids carry brackets and dots: `doorbell.db[host-to-ep bit 3]`).
 */
export function globRegExp(pattern: string): RegExp {
  const body = [...pattern].map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 's');
}

export function globMatch(pattern: string, text: string): boolean {
  return globRegExp(pattern).test(text);
}
