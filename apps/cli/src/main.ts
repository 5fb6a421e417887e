// Entry point of the `1688sync` command.
import { runCli } from './cli';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The launcher's children and open handles are closed by now; nothing should keep us alive.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err) => {
    process.stderr.write(`1688sync: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
