/**
 * Version tokens for catalog scopes, kept in Workers KV. Every catalog key
 * (Cache API, KV document, Redis search entry) embeds the token of its
 * scope, so bumping one token makes exactly that scope's cached copies
 * unreachable, everywhere, without deleting anything:
 *
 * - `products`: the epoch of product documents; bumped by bulk imports (a
 *   single product change republishes that product's documents instead);
 * - `listing:<categorySlug>`: listings of one category; bumped when a product
 *   in it (or moved out of it) changes;
 * - `listing:*`: unfiltered listings, search results and the category list.
 *
 * Reads are memoised per isolate for {@link VERSION_MEMO_MS}: other isolates
 * in the writer's location see a bump within that second; other locations
 * within KV's propagation time (up to 60 s).
 */

/** How long an isolate trusts a version token it read. */
export const VERSION_MEMO_MS = 1_000;

const memo = new Map<string, { value: string; until: number }>();

const kvKey = (scope: string) => `version:${scope}`;

function newToken(): string {
  return `${Date.now().toString(36)}${crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)}`;
}

/**
 * The current token of `scope`. A scope with no token yet (a new deployment,
 * a fresh KV namespace) gets a new random one rather than a fixed initial
 * value, so entries a previous deployment left in Redis can never be mistaken
 * for current ones.
 */
export async function readVersion(kv: KVNamespace, scope: string): Promise<string> {
  const now = Date.now();
  const hit = memo.get(scope);
  if (hit && hit.until > now) return hit.value;
  let value = hit?.value;
  try {
    value = (await kv.get(kvKey(scope))) ?? undefined;
    if (value === undefined) {
      // Concurrent first readers each write a token; reading back after the
      // write lets them settle on the last one instead of each trusting its own.
      await kv.put(kvKey(scope), newToken());
      value = (await kv.get(kvKey(scope))) ?? undefined;
    }
  } catch {
    // KV unreachable: keep serving with the last token we knew.
  }
  value ??= 'kv-unavailable';
  memo.set(scope, { value, until: now + VERSION_MEMO_MS });
  return value;
}

/** Tokens of several scopes, in order. */
export function readVersions(kv: KVNamespace, scopes: string[]): Promise<string[]> {
  return Promise.all(scopes.map((s) => readVersion(kv, s)));
}

/**
 * Moves each scope to a new token. Tokens only need to be new, not ordered. KV allows one write per second per key, so a bump
 * that loses that race is retried once a second later.
 */
export async function bumpVersions(kv: KVNamespace, scopes: string[]): Promise<void> {
  const unique = [...new Set(scopes)];
  await Promise.all(
    unique.map(async (scope) => {
      const token = newToken();
      memo.set(scope, { value: token, until: Date.now() + VERSION_MEMO_MS });
      try {
        await kv.put(kvKey(scope), token);
      } catch {
        await new Promise((r) => setTimeout(r, 1_100));
        await kv.put(kvKey(scope), token);
      }
    }),
  );
}

/** Scope of the listings a category appears in. */
export function listingScope(categorySlug: string | undefined): string {
  return `listing:${categorySlug ?? '*'}`;
}
