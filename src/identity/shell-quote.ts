/** Quote a path for a copy-pasteable shell command in an error message (POSIX sh rules). */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_/.:@%+=,~-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
