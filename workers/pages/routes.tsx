/** Server-rendered storefront pages (hono/jsx). */
import { Hono } from 'hono';
import type { AppEnv } from '../types';

/** Pages, mounted at the root. */
export const pageRoutes = new Hono<AppEnv>();
