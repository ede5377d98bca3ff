/**
 * Admin API token minting, shared by the Worker (`POST /admin/api/tokens`)
 * and the CLI (`npm run admin:token`, in Node): WebCrypto only, no Worker
 * types, so both import the one definition of a token's shape.
 */
import type { ApiTokenRole } from '../../db/schema';
import { sha256Hex } from './hash';
import { randomToken } from './ids';

/** The one-letter tag of each role in a token's prefix, so a leaked token says what it could do. */
const ROLE_TAG: Record<ApiTokenRole, string> = { owner: 'o', catalog: 'c', fulfillment: 'f', readonly: 'r' };

/** Random bytes in a token: 160 bits, 32 base32 characters. */
export const API_TOKEN_RANDOM_BYTES = 20;

/** What a minted token looks like. */
export const API_TOKEN_FORMAT = /^pasar_[ocfr]_[0-9a-hjkmnp-tv-z]{32}$/;

/** A new token for `role` and the hex SHA-256 to store for it (`api_tokens.token_hash`). */
export async function mintApiToken(role: ApiTokenRole): Promise<{ token: string; tokenHash: string }> {
  const token = `pasar_${ROLE_TAG[role]}_${randomToken(API_TOKEN_RANDOM_BYTES)}`;
  return { token, tokenHash: await sha256Hex(token) };
}
