// Bull Board at /admin/queues, behind HTTP basic auth (ADMIN_USER / ADMIN_PASSWORD), showing the
// five queues. Without credentials configured (outside production only) it is not mounted, and its
// path says so — with how to turn it on — instead of a bare "no route" 404.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Queue } from 'bullmq';
import { errorBody } from './errors';

export const BULL_BOARD_PATH = '/admin/queues';

export const BULL_BOARD_OFF =
  'Bull Board is off: ADMIN_USER and ADMIN_PASSWORD are not set. Set both and restart the API (`npm start` generates a login in development and prints it)';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export async function registerBullBoard(app: FastifyInstance, { queues, user, password }: { queues: Queue[]; user?: string; password?: string }) {
  if (!user || !password) {
    app.log.warn('ADMIN_USER/ADMIN_PASSWORD are not set: Bull Board is not mounted');
    const off = async (_request: unknown, reply: FastifyReply) => reply.status(404).send(errorBody('not_found', BULL_BOARD_OFF));
    app.get(BULL_BOARD_PATH, off);
    app.get(`${BULL_BOARD_PATH}/*`, off);
    return;
  }
  const expected = digest(`${user}:${password}`);
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const header = request.headers.authorization ?? '';
      const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
      const given = m ? digest(Buffer.from(m[1], 'base64').toString('utf8')) : null;
      if (!given || !timingSafeEqual(given, expected)) {
        reply.header('www-authenticate', 'Basic realm="1688sync Bull Board", charset="UTF-8"');
        return reply.status(401).send(errorBody('unauthorized', 'Bull Board needs the ADMIN_USER and ADMIN_PASSWORD credentials'));
      }
    });
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(BULL_BOARD_PATH);
    createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter });
    await scope.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
  });
}
