/**
 * The Hono environment shared by every sub-app: the Worker's bindings plus
 * the typed per-request variables the middleware sets.
 */
import type { Region } from '../db/regions';
import type { CacheTier } from './lib/metrics';
import type { AdminPrincipal } from './middleware/admin-auth';
import type { ShopperAccessor } from './middleware/session';
import type { Services } from './services';

/** Variables set on the context by middleware, in the order they run. */
export interface AppVariables {
  /** Set by `requestId()`: echoed as `x-request-id` and in logs. */
  requestId: string;
  /** Set by `region()`: the region that prices and stocks this request. */
  region: Region;
  /** Set by `services()`: database and Redis clients built once for this request. */
  services: Services;
  /** Set by `shopper()` under /api: the signed-in shopper, resolved from the session cookie on first use. */
  shopper: ShopperAccessor;
  /** Set by `adminAuth()` on admin routes: the calling token and its role. */
  admin: AdminPrincipal;
  /**
   * Set by the catalog reads (workers/catalog/service.ts): the deepest tier
   * any catalog read of this request reached (`cache` < `kv`/`redis` <
   * `origin`), logged by `observe()`. Unset when no catalog read ran.
   */
  cacheTier: CacheTier;
}

/** The `Env` generic of every Hono app and handler in this Worker. */
export interface AppEnv {
  Bindings: Env;
  Variables: AppVariables;
}
