// The `1688sync` operator command (SPEC §8). Exit codes: 0 done, 1 failed, 2 wrong usage or configuration.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '@1688sync/config';
import { enqueueCommand } from './commands/enqueue.command';
import { migrateCommand } from './commands/migrate.command';
import { startCommand } from './commands/start.command';
import { type Output, createOutput } from './output';
import { UsageError } from './usage-error';

export const USAGE = `Usage: 1688sync <command> [options]

Commands:
  start                            migrate, then start the four apps locally (what \`npm start\` runs)
  migrate up|down|status           apply pending migrations, revert the last one, or list them
  enqueue <queue> <job> <json>     add one job (--job-id <id> to choose its id)
  help                             show this text

Exit codes: 0 done, 1 failed, 2 wrong usage or configuration.`;

export async function runCli(argv: string[], out: Output = createOutput()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'job-id': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    out.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  if (!command || command === 'help' || parsed.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return command || parsed.values.help ? 0 : 2;
  }
  try {
    const config = loadConfig({ app: 'cli' });
    switch (command) {
      case 'start':
        return await startCommand(config, out);
      case 'migrate':
        return await migrateCommand(config, out, rest);
      case 'enqueue':
        return await enqueueCommand(config, out, rest, parsed.values['job-id']);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      out.error(`invalid configuration: ${err.message}`);
      return 2;
    }
    if (err instanceof UsageError) {
      out.error(`${err.message}\n${USAGE}`);
      return 2;
    }
    out.error((err as Error).message);
    return 1;
  }
}
