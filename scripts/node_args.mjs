// Command-line flags of the node scripts: `--flag VALUE` pairs only.
import path from 'node:path';

// `keys` maps each flag to its property; `usage` is printed (with the
// offending flag) on an unknown flag or a flag without a value, and the
// process exits with status 2. With `resolve`, values become absolute
// paths. Each property of `required` must be given (`missing --<property>`).
export function parseArgs(argv, { keys, usage, defaults = {}, required = [], resolve = false }) {
  const args = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = keys[argv[i]];
    if (!key || argv[i + 1] === undefined) {
      console.error(`usage: ${usage}; got ${argv[i]}`);
      process.exit(2);
    }
    args[key] = resolve ? path.resolve(argv[i + 1]) : argv[i + 1];
  }
  for (const key of required) {
    if (!args[key]) { console.error(`missing --${key}`); process.exit(2); }
  }
  return args;
}
