/**
 * `npm run admin:token -- --name "first owner" [--role owner] [--database-url URL] [--json]`:
 * mints an admin API token straight into Postgres (over TCP, with pg) and
 * prints it once. This is how a store gets its first owner token without
 * ADMIN_BOOTSTRAP_TOKEN; later tokens are better minted through
 * `POST /admin/api/tokens`, which records who made them.
 *
 * The database is `--database-url`, else DATABASE_URL (as for `npm run
 * db:migrate`); there is no guessed default, so a token is never written to a
 * database nobody named. Exit codes: 0 done, 2 bad arguments (nothing
 * written), 1 the database could not be reached or refused the row.
 *
 * Tokens are minted by workers/lib/api-token.ts, the same code as the
 * Worker's `POST /admin/api/tokens`: `pasar_<role initial>_` + 160 random
 * bits in base32, SHA-256 hex stored.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { apiTokenRoles, type ApiTokenRole } from '../db/schema';
import { mintApiToken } from '../workers/lib/api-token';
import { newId } from '../workers/lib/ids';
import { runIfMain } from './processes';

/** A route each role may call, for the usage line. */
const EXAMPLE_PATH: Record<ApiTokenRole, string> = {
  owner: '/admin/api/tokens',
  catalog: '/admin/api/inventory/<sku>',
  fulfillment: '/admin/api/orders',
  readonly: '/admin/api/orders',
};

const USAGE = `usage: npm run admin:token -- --name <name> [--role ${apiTokenRoles.join('|')}] [--database-url <postgres url>] [--json]

  --name           who or what holds the token (1-100 characters)
  --role           owner (default), catalog, fulfillment or readonly
  --database-url   the store's Postgres primary (default: DATABASE_URL)
  --json           print { id, name, role, token, createdAt } as JSON instead of text`;

/** A usage error: nothing was written; exit code 2 (an empty message means --help: usage, exit 0). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** What the command was asked to do. */
export interface TokenRequest {
  name: string;
  role: ApiTokenRole;
  databaseUrl: string;
  json: boolean;
}

/** A token as inserted, with its one-time secret. */
export interface MintedToken {
  id: string;
  name: string;
  role: ApiTokenRole;
  token: string;
  createdAt: Date;
}

/** Parses and validates arguments; throws {@link UsageError} with a message meant for people. */
export function parseTokenArgs(argv: string[], env: NodeJS.ProcessEnv): TokenRequest {
  let values: { name?: string; role?: string; 'database-url'?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        name: { type: 'string' },
        role: { type: 'string', default: 'owner' },
        'database-url': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) throw new UsageError('');
  // Same rule as the API (and the api_tokens_name_not_blank CHECK): trimmed, 1-100 characters, no control characters.
  const name = (values.name ?? '').trim();
  if (!name) throw new UsageError('--name is required: who or what will hold the token, e.g. --name "first owner".');
  if (name.length > 100) throw new UsageError(`--name is ${name.length} characters; at most 100.`);
  if (/\p{Cc}/u.test(name)) throw new UsageError('--name must not contain control characters.');
  const role = values.role ?? 'owner';
  if (!(apiTokenRoles as readonly string[]).includes(role)) {
    throw new UsageError(`--role "${role}" is not a role; use one of ${apiTokenRoles.join(', ')}.`);
  }
  const databaseUrl = values['database-url'] || env.DATABASE_URL;
  if (!databaseUrl) {
    throw new UsageError('DATABASE_URL is not set. Point it (or --database-url) at the Postgres primary, e.g. postgres://postgres@127.0.0.1:5432/pasar');
  }
  try {
    new URL(databaseUrl);
  } catch {
    throw new UsageError('--database-url (or DATABASE_URL) is not a URL, e.g. postgres://postgres@127.0.0.1:5432/pasar');
  }
  return { name, role: role as ApiTokenRole, databaseUrl, json: values.json ?? false };
}

/** `host/database` of a URL, for messages (never the password). */
function where(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  return `${u.host}${u.pathname}`;
}

/** Mints a token and inserts its row (createdBy `cli`). Throws an Error with a readable message on any database failure. */
export async function createAdminToken(req: Pick<TokenRequest, 'name' | 'role' | 'databaseUrl'>): Promise<MintedToken> {
  const { token, tokenHash } = await mintApiToken(req.role);
  const id = newId('tok');
  const client = new pg.Client({ connectionString: req.databaseUrl, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`could not reach Postgres at ${where(req.databaseUrl)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    const { rows } = await client.query<{ created_at: Date }>(
      `insert into api_tokens (id, name, token_hash, role, created_by) values ($1, $2, $3, $4, 'cli') returning created_at`,
      [id, req.name, tokenHash, req.role],
    );
    return { id, name: req.name, role: req.role, token, createdAt: rows[0]!.created_at };
  } catch (err) {
    const code = (err as { code?: string }).code;
    // 42P01 undefined table, 42703 undefined column (created_by came in migration 0005).
    if (code === '42P01' || code === '42703') {
      throw new Error(`${where(req.databaseUrl)} has no up-to-date api_tokens table; run \`npm run db:migrate\` against it first.`);
    }
    throw new Error(`inserting the token into ${where(req.databaseUrl)} failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await client.end().catch(() => {});
  }
}

async function main(): Promise<void> {
  let req: TokenRequest;
  try {
    req = parseTokenArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    // --help is the one "usage error" that is not an error.
    if (!err.message) {
      console.log(USAGE);
      process.exit(0);
    }
    console.error(`admin:token: ${err.message}`);
    console.error(USAGE);
    process.exit(2);
  }
  let minted: MintedToken;
  try {
    minted = await createAdminToken(req);
  } catch (err) {
    console.error(`admin:token: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  if (req.json) {
    console.log(JSON.stringify({ id: minted.id, name: minted.name, role: minted.role, token: minted.token, createdAt: minted.createdAt.toISOString() }));
    return;
  }
  console.log(`Created ${minted.role} token "${minted.name}" (${minted.id}) in ${where(req.databaseUrl)}.`);
  console.log('This is the only time it is shown (only its SHA-256 is stored); keep it in a secret store:');
  console.log('');
  console.log(`  ${minted.token}`);
  console.log('');
  const base = process.env.PASAR_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8787}`;
  // The token is printed once, above; the usage line names it rather than repeating it.
  console.log(`Use it as:  curl -H "authorization: Bearer <token>" ${base}${EXAMPLE_PATH[minted.role]}`);
}

runIfMain(import.meta.url, main);
