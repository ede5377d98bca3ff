/**
 * `npm run admin:token` as a user runs it: a child process against the test
 * database, reading what it prints and what it wrote.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDatabaseOn, dropDatabaseOn } from './postgres';
import { freePort } from './processes';

const databaseUrl = inject('databaseUrl');
const adminUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** The shape workers/admin/tokens.ts mints (API_TOKEN_FORMAT there); the Worker accepts both alike. */
const TOKEN_FORMAT = /^pasar_[ocfr]_[0-9a-hjkmnp-tv-z]{32}$/;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args`; DATABASE_URL is unset unless `env` sets it. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { DATABASE_URL: _, ...rest } = process.env;
  return new Promise((resolve) => {
    execFile(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'dev/admin-token-cli.ts', ...args], { env: { ...rest, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let client: pg.Client;
beforeAll(async () => {
  client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
});
afterAll(async () => {
  await client.end();
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const rowsNamed = async (name: string) => (await client.query('select * from api_tokens where name = $1', [name])).rows;
const uniqueName = (label: string) => `cli test ${label} ${randomBytes(4).toString('hex')}`;

describe('npm run admin:token', () => {
  it('mints an owner token by default, prints it once with a usage line, and stores only its SHA-256', async () => {
    const name = uniqueName('owner');
    const run = await cli(['--name', name, '--database-url', databaseUrl]);
    expect(run.code, run.stderr).toBe(0);
    const tokens = run.stdout.match(/pasar_[a-z]_[0-9a-z]+/g) ?? [];
    expect(tokens).toHaveLength(1);
    const token = tokens[0]!;
    expect(token).toMatch(TOKEN_FORMAT);
    expect(token.startsWith('pasar_o_')).toBe(true);
    expect(run.stdout).toMatch(/only time it is shown/);
    expect(run.stdout).toMatch(/Use it as: .*authorization: Bearer <token>.*\/admin\/api\/tokens/);

    const rows = await rowsNamed(name);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ role: 'owner', created_by: 'cli', token_hash: sha256(token), revoked_at: null, last_used_at: null });
    expect(rows[0].id).toMatch(/^tok_[0-9a-z]{26}$/);
    expect(run.stdout).toContain(rows[0].id);
    expect(JSON.stringify(rows[0])).not.toContain(token);
  });

  it('takes the role and DATABASE_URL from the environment, and prints JSON with --json', async () => {
    const name = uniqueName('json');
    const run = await cli(['--name', name, '--role', 'fulfillment', '--json'], { DATABASE_URL: databaseUrl });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { id: string; name: string; role: string; token: string; createdAt: string };
    expect(out).toMatchObject({ name, role: 'fulfillment' });
    expect(out.token).toMatch(/^pasar_f_/);
    const [row] = await rowsNamed(name);
    expect(row).toMatchObject({ id: out.id, role: 'fulfillment', token_hash: sha256(out.token) });
    expect(new Date(out.createdAt).getTime()).toBe(new Date(row.created_at).getTime());
  });

  it('trims the name, as the API does', async () => {
    const name = uniqueName('trim');
    const run = await cli(['--name', `  ${name}  `, '--role', 'readonly', '--database-url', databaseUrl]);
    expect(run.code, run.stderr).toBe(0);
    expect(await rowsNamed(name)).toHaveLength(1);
  });

  it('exits 2 with a clear message on bad arguments, writing nothing', async () => {
    const name = uniqueName('bad');
    const cases: { args: string[]; message: RegExp }[] = [
      { args: ['--name', name, '--role', 'superuser', '--database-url', databaseUrl], message: /--role "superuser" is not a role; use one of owner, catalog, fulfillment, readonly/ },
      { args: ['--database-url', databaseUrl], message: /--name is required/ },
      { args: ['--name', '   ', '--database-url', databaseUrl], message: /--name is required/ },
      { args: ['--name', 'x'.repeat(101), '--database-url', databaseUrl], message: /at most 100/ },
      { args: ['--name', `${name}\u0007`, '--database-url', databaseUrl], message: /control characters/ },
      { args: ['--name', name, '--database-url', databaseUrl, '--token', 'mine'], message: /Unknown option '--token'/ },
      { args: ['--name', name], message: /DATABASE_URL is not set/ },
      { args: ['--name', name, '--database-url', 'not a url'], message: /not a URL/ },
    ];
    const runs = await Promise.all(cases.map(({ args }) => cli(args)));
    for (const [i, { args, message }] of cases.entries()) {
      const run = runs[i]!;
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain('usage: npm run admin:token');
      expect(run.stdout).toBe('');
    }
    expect(await rowsNamed(name)).toEqual([]);
  });

  it('exits 1 naming the database when Postgres cannot be reached', async () => {
    const port = await freePort();
    const run = await cli(['--name', uniqueName('down'), '--database-url', `postgres://postgres:secret@127.0.0.1:${port}/pasar`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`could not reach Postgres at 127.0.0.1:${port}/pasar`);
    // The password is not echoed.
    expect(run.stderr).not.toContain('secret');
    expect(run.stdout).toBe('');
  });

  it('exits 1 telling to migrate when the database has no api_tokens table', async () => {
    const dbName = `pasar_cli_empty_${randomBytes(4).toString('hex')}`;
    const emptyUrl = await createDatabaseOn(adminUrl, dbName);
    try {
      const run = await cli(['--name', uniqueName('empty'), '--database-url', emptyUrl]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/run `npm run db:migrate`/);
    } finally {
      await dropDatabaseOn(adminUrl, dbName);
    }
  });
});
