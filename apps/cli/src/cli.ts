// The `1688sync` operator command (README.md, Operations). Exit codes: 0 done, 1 failed, 2 wrong usage or
// configuration, 3 the consistency check left critical findings.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '@1688sync/config';
import { backupCommand } from './commands/backup.command';
import { changesCommand } from './commands/changes.command';
import { checkCommand } from './commands/check.command';
import { dbCommand } from './commands/db.command';
import { enqueueCommand } from './commands/enqueue.command';
import { imagesCommand } from './commands/images.command';
import { UnreachableError } from './commands/maintenance-deps';
import { migrateCommand } from './commands/migrate.command';
import { reconcileCommand } from './commands/reconcile.command';
import { groupSimilarCommand } from './commands/group-similar.command';
import { demoCommand } from './commands/demo.command';
import { startCommand } from './commands/start.command';
import { webhooksCommand } from './commands/webhooks.command';
import { type Output, createOutput } from './output';
import { UsageError } from './usage-error';

export const USAGE = `Usage: 1688sync <command> [options]

Commands:
  start                            migrate, then start the four apps locally (what \`npm start\` runs)
  demo                             the stack on the bundled sample catalogue: ingest, process, summary
                                   (what \`npm run demo\` runs; its own database and queue prefix)
  migrate up [--backup]|down|status
                                   apply pending migrations (with --backup: a database backup
                                   first), revert the last one, or list them
  check [--fix]                    run the consistency check here and print its report
                                   (a dry run unless --fix; the report is stored like the scheduled ones)
  reconcile                        queue every image whose download or processing is not done and not queued
  db stats                         table and index sizes, unused indexes, slow statements, pool usage
  db vacuum                        VACUUM (ANALYZE) every table
  images retry [--download|--process] [--product <id>]
                                   put failed images back to work (both kinds unless one is named)
  images reprocess [--product <id>]
                                   regenerate derived files made under other image settings
  images fingerprint [--product <id>]
                                   phash, thumbhash and dominant colour for processed images that
                                   lack them, from their stored originals (nothing is downloaded)
  group-similar                    cluster products whose main images are near duplicates (同款 groups)
  backup create [--kind full|db|files] [--incremental]
                                   back up the database (pg_dump) and/or the image files into
                                   BACKUP_DIR (incremental: only files new since the last full one)
  backup list                      the backups catalogue, newest first
  backup restore <id> [--yes] [--keep-schema]
                                   restore a backup: without --yes only say what it would do; with
                                   --yes take a safety backup, pause the queues, restore, verify
                                   against the manifest, roll back on failure, then reconcile;
                                   --keep-schema leaves the backup's schema (no newer migrations),
                                   to go back to the version of 1688sync that made it
  backup prune                     remove backups older than BACKUP_RETENTION_DAYS, keeping the
                                   newest BACKUP_KEEP_MIN
  changes tail [--types <t,…>] [--after <cursor>] [--json]
                                   follow the change feed from its end (or after a cursor), one
                                   line per event (with --json, the event as one JSON line);
                                   Ctrl-C stops
  webhooks list                    the webhook subscriptions
  webhooks create <url> --events <type,…|*> [--description <text>] [--exclude-sources <source,…>]
                                   subscribe a URL to change events; prints the signing secret once
  webhooks delete <id>             delete a subscription (nothing more is sent to it)
  webhooks deliveries <id> [--status pending|delivered|failed]
                                   a subscription's latest deliveries
  enqueue <queue> <job> <json>     add one job (--job-id <id> to choose its id)
  help                             show this text

Options:
  --json                           check, reconcile, db, images, backup, changes, webhooks: print the result as JSON

Exit codes:
  0  done (check: no critical finding remains; backup restore without --yes: the plan, nothing changed)
  1  failed (an error, PostgreSQL or Redis unreachable, a check that could not finish, a corrupted
     backup, a restore that was rolled back)
  2  wrong usage or configuration
  3  check: critical findings remain (after the repairs, with --fix)`;

/** The options each command takes; any other is a usage error (a typo must not be ignored). */
const COMMAND_OPTIONS: Record<string, string[]> = {
  start: [],
  demo: [],
  migrate: ['backup'],
  backup: ['kind', 'incremental', 'yes', 'keep-schema', 'json'],
  enqueue: ['job-id'],
  check: ['fix', 'json'],
  reconcile: ['json'],
  'group-similar': ['json'],
  db: ['json'],
  images: ['download', 'process', 'product', 'json'],
  changes: ['types', 'after', 'json'],
  webhooks: ['events', 'description', 'exclude-sources', 'status', 'json'],
};

function noArguments(command: string, rest: string[]) {
  if (rest.length) throw new UsageError(`${command} takes no arguments, got ${rest.map((r) => JSON.stringify(r)).join(' ')}`);
}

export async function runCli(argv: string[], out: Output = createOutput()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'job-id': { type: 'string' },
        fix: { type: 'boolean' },
        json: { type: 'boolean' },
        download: { type: 'boolean' },
        process: { type: 'boolean' },
        product: { type: 'string' },
        types: { type: 'string' },
        after: { type: 'string' },
        kind: { type: 'string' },
        incremental: { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        backup: { type: 'boolean' },
        'keep-schema': { type: 'boolean' },
        events: { type: 'string' },
        description: { type: 'string' },
        'exclude-sources': { type: 'string' },
        status: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
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
    if (!Object.hasOwn(COMMAND_OPTIONS, command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    const given = Object.keys(parsed.values).filter((o) => o !== 'help');
    const refused = given.filter((o) => !COMMAND_OPTIONS[command].includes(o));
    if (refused.length) throw new UsageError(`${command} does not take ${refused.map((o) => `--${o}`).join(', ')}`);
    const v = parsed.values;
    const config = loadConfig({ app: 'cli' });
    switch (command) {
      case 'start':
        return await startCommand(config, out);
      case 'demo':
        noArguments(command, rest);
        return await demoCommand(config, out);
      case 'migrate':
        return await migrateCommand(config, out, rest, { backup: v.backup });
      case 'backup':
        return await backupCommand(config, out, rest, { kind: v.kind, incremental: v.incremental, yes: v.yes, keepSchema: v['keep-schema'], json: v.json });
      case 'enqueue':
        return await enqueueCommand(config, out, rest, v['job-id']);
      case 'check':
        noArguments(command, rest);
        return await checkCommand(config, out, { fix: v.fix, json: v.json });
      case 'reconcile':
        noArguments(command, rest);
        return await reconcileCommand(config, out, { json: v.json });
      case 'group-similar':
        noArguments(command, rest);
        return await groupSimilarCommand(config, out, { json: v.json });
      case 'db':
        return await dbCommand(config, out, rest, { json: v.json });
      case 'images':
        return await imagesCommand(config, out, rest, { download: v.download, process: v.process, product: v.product, json: v.json });
      case 'changes':
        return await changesCommand(config, out, rest, { types: v.types, after: v.after, json: v.json });
      case 'webhooks':
        return await webhooksCommand(config, out, rest, { events: v.events, description: v.description, excludeSources: v['exclude-sources'], status: v.status, json: v.json });
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
    if (err instanceof UnreachableError) {
      out.error(`${err.message} (start it as a local service, or with \`docker compose up -d postgres redis\`)`);
      return 1;
    }
    out.error((err as Error).message);
    return 1;
  }
}
