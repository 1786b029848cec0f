/** Command-line options of the bench scripts: `--name` flags and `--name value` options. */
const argv = process.argv.slice(2);

export const flag = (name: string): boolean => argv.includes(`--${name}`);

export const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};
