import { describe, expect, it } from 'vitest';
import { loadConfig } from '@1688sync/config';
import { bullBoardLogin } from './start.command';

const config = (env: Record<string, string>) => loadConfig({ app: 'cli', env });

describe('the Bull Board login npm start gives the API', () => {
  it('is generated in development when neither ADMIN_USER nor ADMIN_PASSWORD is set, fresh on each start', () => {
    const a = bullBoardLogin(config({}));
    const b = bullBoardLogin(config({}));
    expect(a).toMatchObject({ user: 'admin', generated: true });
    expect(a!.password.length).toBeGreaterThanOrEqual(16);
    expect(b!.password).not.toBe(a!.password);
  });

  it("is the operator's when both are set", () => {
    expect(bullBoardLogin(config({ ADMIN_USER: 'ops', ADMIN_PASSWORD: 'chosen-password' }))).toEqual({ user: 'ops', password: 'chosen-password', generated: false });
  });

  it('is never generated in production', () => {
    expect(bullBoardLogin(config({ NODE_ENV: 'production' }))).toBeNull();
  });
});
