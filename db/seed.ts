/**
 * The development and test catalog: a deterministic generator (`buildSeed`)
 * and a loader (`seedDatabase`).
 *
 * Determinism is the point. Tests, benchmarks and the local stack all refer
 * to the same products by slug/SKU (see `seedFixtures`), and a checksum over
 * the data (`seedChecksum`) tells at a glance whether two machines hold the
 * same catalog. So the generator uses a fixed-seed PRNG, fixed timestamps and
 * integer/IEEE-exact arithmetic only (no Math.exp/log/pow, whose last bits are
 * not guaranteed across engines).
 *
 * Each product draws from its own PRNG stream (seeded by its index), so a
 * change to one category's vocabulary does not reshuffle every other product.
 *
 * Media rows point at `seed/<product-slug>-<n>.jpg` keys; the generator does
 * not produce image bytes, so those R2 objects do not exist unless something
 * else uploads placeholders.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { REGION_CODES, REGIONS, type RegionCode } from './regions';
import * as schema from './schema';

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

export type RegionRow = typeof schema.regions.$inferSelect;
export type CategoryRow = typeof schema.categories.$inferSelect;
export type ProductRow = typeof schema.products.$inferSelect;
export type VariantRow = typeof schema.variants.$inferSelect;
export type PriceRow = typeof schema.prices.$inferSelect;
export type StockRow = typeof schema.stock.$inferSelect;
export type MediaRow = typeof schema.media.$inferSelect;

/** Every row the seed inserts, table by table, in foreign-key order. */
export interface SeedData {
  regions: RegionRow[];
  categories: CategoryRow[];
  products: ProductRow[];
  variants: VariantRow[];
  prices: PriceRow[];
  stock: StockRow[];
  media: MediaRow[];
}

/** The seven selling regions (db/regions.ts), in the order the storefront lists them. */
export const seedRegionCodes = REGION_CODES;
export type SeedRegionCode = RegionCode;

/** Changing this string produces a different (but equally deterministic) catalog. */
export const SEED = 'pasar-seed-v1';

/** How many products `buildSeed` generates. */
export const SEED_PRODUCT_COUNT = 2400;

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/** cyrb128: spreads a string into four 32-bit words to seed sfc32. */
function cyrb128(str: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** sfc32, a small fast PRNG with a 128-bit state; good enough for fake data, not for secrets. */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(label: string) {
    [this.a, this.b, this.c, this.d] = cyrb128(`${SEED}:${label}`);
    // Discard the first outputs: sfc32's early values correlate with the seed.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** `k` distinct items, kept in their original order (sizes stay S, M, L). */
  sample<T>(items: readonly T[], k: number): T[] {
    const idx = items.map((_, i) => i);
    this.shuffle(idx);
    return idx
      .slice(0, Math.min(k, items.length))
      .sort((x, y) => x - y)
      .map((i) => items[i] as T);
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** `n` lowercase Crockford base32 characters (5 bits each). */
  base32(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += CROCKFORD[this.uint32() >>> 27];
    return s;
  }

  /** An opaque id: prefix + 80 random bits, the same shape the app mints at the edge. */
  id(prefix: string): string {
    return `${prefix}_${this.base32(16)}`;
  }
}

// ---------------------------------------------------------------------------
// Regions
// ---------------------------------------------------------------------------

const REGIONS_CREATED_AT = new Date('2025-06-01T00:00:00Z');
/** Catalog "now": products were created in the year before it and nothing is later. */
const BASE_MS = Date.UTC(2026, 0, 1);
const DAY_MS = 86_400_000;

/**
 * Region facts come from db/regions.ts, the table the Worker resolves regions
 * from without a database trip; writing the same values here keeps the
 * origin's rows (and its currency foreign keys) in agreement with the edge.
 * Amounts everywhere in the seed are integers in units of 10^-currencyExponent
 * of that table (IDR, VND and TWD: whole units).
 */
function regionRows(): RegionRow[] {
  return REGION_CODES.map((code) => {
    const r = REGIONS[code];
    return {
      code: r.code,
      name: r.name,
      countryCode: r.countryCode,
      currency: r.currency,
      currencyExponent: r.currencyExponent,
      locale: r.locale,
      timeZone: r.timeZone,
      taxRateBps: r.taxRateBps,
      taxInclusive: r.taxInclusive,
      locationHint: r.locationHint,
      createdAt: REGIONS_CREATED_AT,
    };
  });
}

/**
 * Fixed USD -> local rates (roughly late-2025 mid-market) and a local price
 * level, so prices look local rather than mechanically converted. Fixed on
 * purpose: the seed must not change when markets move.
 */
const FX: Record<SeedRegionCode, { rate: number; level: number }> = {
  sg: { rate: 1.3, level: 1.0 },
  my: { rate: 4.2, level: 0.92 },
  th: { rate: 32.5, level: 0.95 },
  id: { rate: 16_600, level: 0.9 },
  vn: { rate: 26_300, level: 0.9 },
  ph: { rate: 58.5, level: 0.97 },
  tw: { rate: 31, level: 1.0 },
};

/** Bigger markets get deeper stock. */
const STOCK_SCALE: Record<SeedRegionCode, number> = {
  sg: 0.6,
  my: 0.8,
  th: 1.0,
  id: 1.6,
  vn: 1.1,
  ph: 1.2,
  tw: 0.9,
};

/**
 * "Nice" local price points, per currency, as tiers over the raw amount in
 * minor units: round to `step`, then subtract `minus` (so 12.34 SGD -> 11.90,
 * 1,263,000 VND -> 1,290,000 - 10,000 = 1,280,000...). The result is at least
 * `step - minus`, so never zero or negative.
 */
const PRICE_TIERS: Record<string, { below: number; step: number; minus: number }[]> = {
  // S$11.90, S$129, S$1,290
  SGD: [
    { below: 100_00, step: 1_00, minus: 10 },
    { below: 1000_00, step: 10_00, minus: 1_00 },
    { below: Infinity, step: 100_00, minus: 10_00 },
  ],
  MYR: [
    { below: 100_00, step: 1_00, minus: 10 },
    { below: 1000_00, step: 10_00, minus: 1_00 },
    { below: Infinity, step: 100_00, minus: 10_00 },
  ],
  // ฿49, ฿299, ฿1,290: baht prices are whole.
  THB: [
    { below: 1000_00, step: 10_00, minus: 1_00 },
    { below: Infinity, step: 100_00, minus: 10_00 },
  ],
  // ₱49, ₱299, ₱1,499.
  PHP: [
    { below: 1000_00, step: 10_00, minus: 1_00 },
    { below: Infinity, step: 50_00, minus: 1_00 },
  ],
  // Rp 14.000, Rp 129.000, Rp 1.299.000: always whole thousands.
  IDR: [
    { below: 100_000, step: 5_000, minus: 1_000 },
    { below: 1_000_000, step: 10_000, minus: 1_000 },
    { below: Infinity, step: 100_000, minus: 1_000 },
  ],
  // 45.000₫, 129.000₫, 1.290.000₫: always whole thousands.
  VND: [
    { below: 100_000, step: 1_000, minus: 0 },
    { below: 1_000_000, step: 10_000, minus: 1_000 },
    { below: Infinity, step: 100_000, minus: 10_000 },
  ],
  // NT$49, NT$299, NT$1,290.
  TWD: [
    { below: 1_000, step: 10, minus: 1 },
    { below: Infinity, step: 100, minus: 10 },
  ],
};

function niceTier(currency: string, raw: number): { step: number; minus: number } {
  const tiers = PRICE_TIERS[currency];
  if (!tiers) throw new Error(`no price tiers for ${currency}`);
  for (const t of tiers) if (raw < t.below) return t;
  throw new Error('unreachable: last tier is unbounded');
}

/** Rounds a raw amount (minor units) to a local price point. */
function nicePrice(currency: string, raw: number): number {
  const { step, minus } = niceTier(currency, raw);
  return Math.max(step - minus, Math.round(raw / step) * step - minus);
}

// ---------------------------------------------------------------------------
// Catalog vocabulary
// ---------------------------------------------------------------------------

/**
 * Phrase banks for one product noun. Anything left out falls back to the
 * category's bank; nouns override where the category is too mixed for one
 * bank to read naturally (a soundbar has no ear tips, a claypot no plug).
 */
interface NounBanks {
  /** Qualifiers (material, flavour, series) that go with this noun. */
  q?: readonly string[];
  /** Brands that make this noun. */
  b?: readonly string[];
  /** Model codes. */
  mo?: readonly string[];
  /** Option axes. */
  ax?: readonly Axis[];
  /** Features (noun phrases), materials (noun phrases), benefits (verb phrases), uses, extra sentences. */
  f?: readonly string[];
  m?: readonly string[];
  be?: readonly string[];
  u?: readonly string[];
  x?: readonly string[];
}

/** A product noun with its own price (USD) and weight (g) range. */
interface Noun extends NounBanks {
  n: string;
  usd: [number, number];
  g: [number, number];
}

/** An option axis; `price`/`grams` are per-value multipliers (default 1). */
interface Axis {
  name: string;
  values: readonly string[];
  price?: readonly number[];
  grams?: readonly number[];
}

interface LeafSpec {
  slug: string;
  name: string;
  description: string;
  /** Relative share of the products. */
  share: number;
  brands: readonly string[];
  quals: readonly string[];
  nouns: readonly Noun[];
  /** Model codes; `#` becomes a digit 1-9. Empty string means "no model". */
  models?: readonly string[];
  /** `{brand} {qual} {noun} {model}` unless given; a noun containing `{q}` takes the qual itself. */
  template?: string;
  axes: readonly Axis[];
  features: readonly string[];
  materials: readonly string[];
  benefits: readonly string[];
  uses: readonly string[];
  extras: readonly string[];
  /** Portrait images (fashion) rather than square. */
  portrait?: boolean;
}

interface TopSpec {
  slug: string;
  name: string;
  description: string;
  leaves: readonly LeafSpec[];
}

const noun = (n: string, usdMin: number, usdMax: number, gMin: number, gMax: number, banks: NounBanks = {}): Noun => ({
  n,
  usd: [usdMin, usdMax],
  g: [gMin, gMax],
  ...banks,
});

const colour = (...values: string[]): Axis => ({ name: 'colour', values });
const APPAREL_SIZES: Axis = { name: 'size', values: ['XS', 'S', 'M', 'L', 'XL', 'XXL'] };
const PACKS: Axis = { name: 'pack', values: ['Single', 'Twin Pack', '4-Pack'], price: [1, 1.9, 3.6], grams: [1, 2, 4] };

const CATALOG: readonly TopSpec[] = [
  {
    slug: 'electronics',
    name: 'Electronics',
    description: 'Phones, audio, computers and gadgets with local warranty.',
    leaves: [
      {
        slug: 'phones',
        name: 'Phones',
        description: 'Smartphones for every budget, unlocked for every network in the region.',
        share: 5,
        brands: ['Nexa', 'Lumio', 'Orbis', 'Kaito', 'Volta', 'Aurora'],
        quals: ['Nova', 'Edge', 'Lite', 'Max', 'Air', 'Neo', 'Prime'],
        nouns: [
          noun('5G Smartphone', 199, 1199, 170, 230),
          noun('Smartphone', 129, 499, 170, 210),
          noun('Foldable 5G Phone', 899, 1799, 220, 260, { f: ['a 7.6-inch foldable AMOLED display', 'a crease-free hinge', 'a 50MP main camera', 'IPX8 water resistance', 'split-screen multitasking'] }),
          noun('Rugged Smartphone', 179, 549, 250, 340, {
            f: ['MIL-STD-810H drop protection', 'IP69K dust and water resistance', 'a 10,000mAh battery', 'a glove-friendly touchscreen', 'a programmable side key'],
            m: ['a rubberised polycarbonate shell', 'a reinforced steel frame'],
            be: ['survives drops onto concrete and a day in the rain', 'keeps going for three days between charges'],
            u: ['construction sites', 'fishing trips', 'delivery riders', 'jungle treks'],
          }),
        ],
        models: ['X#', 'S#', 'A#', 'M#', 'X#0 Pro', 'S#0 Ultra', '#s'],
        template: '{brand} {qual} {model} {noun}',
        axes: [
          { name: 'storage', values: ['128GB', '256GB', '512GB'], price: [1, 1.15, 1.35] },
          colour('Midnight Black', 'Pearl White', 'Ocean Blue', 'Jade Green', 'Sunset Gold', 'Lavender'),
        ],
        features: [
          'a 120Hz AMOLED display',
          'a 5,000mAh battery with 45W fast charging',
          'a 50MP main camera with optical image stabilisation',
          'dual SIM plus eSIM support',
          'IP68 dust and water resistance',
          'NFC for contactless payments',
          'five years of security updates',
        ],
        materials: ['an aluminium frame and matte glass back', 'a recycled-plastic frame', 'a titanium frame and ceramic back'],
        benefits: [
          'feels light in the hand yet survives daily knocks',
          'stays cool during long gaming sessions',
          'keeps going from the morning commute to late-night supper',
        ],
        uses: ['mobile gaming', 'night photography', 'video calls with family back home', 'streaming dramas on the commute', 'running a small online shop'],
        extras: ['Comes with a 12-month local warranty and a USB-C cable.', 'Works on every major 4G and 5G network in Southeast Asia and Taiwan.'],
      },
      {
        slug: 'audio',
        name: 'Audio',
        description: 'Wireless earbuds, headphones and speakers.',
        share: 6,
        brands: ['Aurora', 'Sonique', 'Bassline', 'Echo Lane', 'Harmonia', 'Tempo'],
        quals: ['Wireless', 'True Wireless', 'Noise-Cancelling Wireless', 'Sport Wireless', 'Bluetooth'],
        nouns: [
          noun('Earbuds', 19, 249, 40, 70),
          noun('Headphones', 29, 399, 200, 320, {
            q: ['Wireless', 'Noise-Cancelling Wireless', 'Studio', 'Over-Ear Bluetooth'],
            m: ['memory-foam cushions and a brushed aluminium headband', 'protein-leather ear cushions', 'a lightweight steel headband'],
          }),
          noun('Portable Speaker', 25, 299, 350, 1200, {
            q: ['Wireless', 'Waterproof Bluetooth', 'Party', 'Outdoor'],
            f: ['IPX7 waterproofing', 'a Bluetooth 5.3 wireless connection', 'up to 24 hours of playback', 'stereo pairing with a second speaker', 'a built-in power bank', 'deep bass from twin passive radiators'],
            m: ['a woven fabric grille', 'rugged rubberised plastic'],
            be: ['fills a room with warm, balanced sound', 'survives pool parties and beach trips', 'floats if it falls in the water'],
            u: ['beach days', 'karaoke nights at home', 'backyard barbecues', 'camping trips'],
          }),
          noun('Soundbar', 89, 599, 1800, 4500, {
            q: ['Wireless', 'Dolby Atmos', 'Compact', 'Bluetooth'],
            f: ['Dolby Atmos virtual surround', 'a wireless subwoofer', 'HDMI eARC', 'Bluetooth 5.3 wireless streaming', 'a dedicated dialogue mode'],
            m: ['a woven fabric grille', 'a brushed aluminium frame'],
            be: ['fills a room with cinematic sound', 'makes dialogue clear even at low volume'],
            u: ['movie nights', 'live football', 'gaming consoles', 'K-drama binges'],
          }),
          noun('Neckband Earphones', 15, 89, 30, 50),
        ],
        models: ['X#', 'A#', 'Pro #', 'Go #', 'Q#0', 'Beat #'],
        template: '{brand} {model} {qual} {noun}',
        axes: [colour('Black', 'White', 'Sage', 'Navy', 'Coral', 'Sand')],
        features: [
          'active noise cancelling',
          'a Bluetooth 5.3 wireless connection with multipoint pairing',
          'up to 30 hours of battery life',
          'a low-latency gaming mode',
          'IPX5 sweat and splash resistance',
          'deep bass tuned by studio engineers',
          'clear calls with four beamforming microphones',
        ],
        materials: ['soft silicone ear tips', 'recycled plastics', 'lightweight polycarbonate'],
        benefits: ['quiets the rumble of buses and trains', 'stays comfortable through a full working day', 'reconnects instantly when you open the case'],
        uses: ['commuting', 'workouts at the gym', 'focused work in open-plan offices', 'long-haul flights', 'late-night gaming'],
        extras: ['Pairs with phones, laptops and smart TVs over Bluetooth.', 'Includes a USB-C charging cable and a 12-month local warranty.'],
      },
      {
        slug: 'laptops-tablets',
        name: 'Laptops & Tablets',
        description: 'Ultrabooks, gaming laptops and tablets.',
        share: 3,
        brands: ['Lumio', 'Orbis', 'Kaito', 'Vertex', 'Nimbus'],
        quals: ['Air', 'Pro', 'Slim', 'Creator', 'Gaming', 'Flip'],
        nouns: [
          noun('Laptop', 399, 2199, 1100, 2400),
          noun('Tablet', 149, 999, 450, 700, { q: ['Air', 'Pro', 'Lite', 'Kids'], mo: ['10', '11', '12', '13'] }),
          noun('2-in-1 Laptop', 499, 1599, 1000, 1500, { q: ['Flip', 'Fold', 'Pro'] }),
          noun('Chromebook', 229, 549, 1100, 1400, { q: ['Air', 'Slim', 'Classroom'] }),
        ],
        models: ['13', '14', '15', '16', '14 Gen #', '16 Gen #'],
        template: '{brand} {qual} {model} {noun}',
        axes: [
          { name: 'configuration', values: ['8GB / 256GB', '16GB / 512GB', '32GB / 1TB'], price: [1, 1.25, 1.6] },
          colour('Space Grey', 'Silver', 'Midnight Blue'),
        ],
        features: [
          'an OLED display with 100% DCI-P3 colour',
          'all-day battery life',
          'a backlit keyboard',
          'Wi-Fi 7 and two USB-C ports',
          'a 1080p webcam with a privacy shutter',
          'a stylus-ready touchscreen',
        ],
        materials: ['a CNC-machined aluminium chassis', 'a magnesium-alloy body', 'recycled aluminium'],
        benefits: ['weighs less than a textbook', 'runs quietly even under load', 'wakes instantly when you open it'],
        uses: ['university assignments', 'video editing', 'remote work from a café', 'online classes', 'spreadsheets and presentations'],
        extras: ['Ships with a regional power adapter.', 'Covered by a 2-year local warranty with carry-in service.'],
      },
      {
        slug: 'wearables',
        name: 'Wearables',
        description: 'Smartwatches, fitness bands and smart rings.',
        share: 3,
        brands: ['Pulse', 'Nexa', 'Stride', 'Tempo', 'Kaito'],
        quals: ['Smart', 'Fitness', 'GPS Sport', 'Kids Smart'],
        nouns: [
          noun('Watch', 49, 499, 30, 60),
          noun('Band', 19, 89, 20, 30, { q: ['Fitness', 'Smart', 'Sleep'] }),
          noun('Ring', 149, 349, 3, 6, {
            q: ['Smart', 'Sleep-Tracking'],
            ax: [colour('Matte Black', 'Silver', 'Gold'), { name: 'size', values: ['US 6', 'US 7', 'US 8', 'US 9', 'US 10', 'US 11'] }],
            f: ['sleep and readiness scores', 'continuous heart-rate and SpO2 tracking', 'a 7-day battery', '100 m water resistance', 'skin-temperature sensing'],
            m: ['a titanium shell', 'a ceramic-coated titanium shell'],
          }),
        ],
        models: ['Fit #', 'Run #', 'Active #', 'S#', 'Lite #'],
        template: '{brand} {model} {qual} {noun}',
        axes: [colour('Black', 'Olive', 'Rose', 'Stone', 'Navy'), { name: 'size', values: ['S/M', 'M/L'] }],
        features: [
          'continuous heart-rate and SpO2 tracking',
          'built-in GPS',
          'a 10-day battery',
          '5ATM water resistance',
          'sleep and stress tracking',
          'wireless contactless payments',
        ],
        materials: ['a soft fluoroelastomer strap', 'a woven nylon strap', 'an aluminium case'],
        benefits: ['is light enough to forget you are wearing it', 'keeps tracking through tropical downpours', 'syncs wirelessly with your phone'],
        uses: ['morning runs', 'swimming laps', 'tracking sleep after night shifts', 'hiking', 'cycling to work'],
        extras: ['Works with both Android and iOS.', 'Comes with a magnetic wireless charger.'],
      },
      {
        slug: 'cameras',
        name: 'Cameras',
        description: 'Mirrorless, action and instant cameras and accessories.',
        share: 2,
        brands: ['Optica', 'Lumio', 'Kaito', 'Frame & Co.'],
        quals: ['Mirrorless', 'Action', 'Instant', 'Compact', 'Vlogging'],
        nouns: [
          noun('Camera', 79, 1899, 120, 700),
          noun('Gimbal', 59, 199, 300, 600, {
            q: ['Smartphone', 'Foldable', 'Vlogging'],
            f: ['3-axis stabilisation', 'face and object tracking', 'a built-in extension rod', 'a 10-hour battery'],
            m: ['an aluminium-alloy frame', 'lightweight reinforced polycarbonate'],
            be: ['keeps footage steady on bumpy roads', 'folds down to fit a jacket pocket'],
          }),
          noun('Tripod', 19, 129, 400, 1500, {
            q: ['Travel', 'Carbon Fibre', 'Mini'],
            f: ['a quick-release plate', 'a 360° ball head', 'twist-lock legs', 'a smartphone clamp'],
            m: ['carbon fibre', 'aluminium alloy'],
            be: ['sets up in under ten seconds', 'folds down to the size of a water bottle'],
          }),
        ],
        models: ['Z#0', 'A#', 'GO #', 'V#0', 'Mini #'],
        template: '{brand} {model} {qual} {noun}',
        axes: [
          { name: 'kit', values: ['Standard', 'Creator Kit', 'Travel Kit'], price: [1, 1.25, 1.35], grams: [1, 1.3, 1.4] },
          colour('Black', 'Silver'),
        ],
        features: ['4K video at 60fps', 'in-body image stabilisation', 'a flip-out touchscreen', 'fast hybrid autofocus', 'a weather-sealed body'],
        materials: ['a magnesium-alloy body', 'a textured rubber grip', 'an aluminium frame'],
        benefits: ['slips into a day bag', 'makes sunsets look like postcards', 'focuses fast on moving kids and pets'],
        uses: ['travel vlogging', 'street photography in Bangkok and Hanoi', 'family events', 'diving trips', 'product shots for your online shop'],
        extras: ['Includes a battery, charger and strap.', 'Covered by a 12-month local warranty.'],
      },
      {
        slug: 'mobile-accessories',
        name: 'Mobile Accessories',
        description: 'Chargers, cables, power banks and cases.',
        share: 4,
        brands: ['Voltix', 'Charge Lab', 'Cablex', 'Shieldo', 'Aurora'],
        quals: ['Fast'],
        nouns: [
          noun('GaN Charger', 12, 59, 60, 180, {
            q: ['Fast', '65W', '100W', 'Travel'],
            f: ['USB Power Delivery 3.0 fast charging', 'three USB-C ports', 'foldable plug pins', 'over-heat and over-current protection'],
            m: ['fire-retardant polycarbonate'],
            be: ['charges a laptop and a phone at once', 'is half the size of a standard charger'],
          }),
          noun('Power Bank', 15, 79, 180, 450, {
            q: ['Magnetic Wireless', 'Slim', '20000mAh', 'Fast'],
            f: ['20W USB-C fast charging', 'magnetic wireless charging', 'a built-in cable', 'an LED charge display', 'an airline-safe capacity'],
            m: ['an aluminium shell', 'fire-retardant polycarbonate'],
            be: ['tops up a phone twice over', 'slips into a jeans pocket'],
          }),
          noun('USB-C Cable', 5, 25, 30, 80, {
            q: ['Braided', 'Fast', '2m', 'Right-Angle'],
            f: ['USB Power Delivery up to 100W', '480 Mbps data transfer', 'a 10,000-bend lifetime rating', 'reinforced connectors'],
            m: ['braided nylon', 'soft-touch silicone'],
            be: ['never tangles in your bag', 'outlasts the cable that came in the box'],
          }),
          noun('Phone Case', 6, 39, 30, 70, {
            q: ['Rugged', 'Clear', 'Magnetic', 'Slim', 'Batik-Print'],
            f: ['drop protection up to 2 metres', 'raised camera and screen edges', 'built-in magnets for wireless chargers', 'a non-slip grip'],
            m: ['shock-absorbing TPU', 'vegan leather', 'recycled polycarbonate'],
            be: ['adds almost no bulk', 'resists yellowing in the sun'],
          }),
          noun('Wireless Charging Pad', 12, 49, 90, 200, {
            q: ['Magnetic', '3-in-1', 'Fast'],
            f: ['15W wireless charging', 'magnetic alignment', 'foreign-object detection', 'a soft-glow LED'],
            m: ['aluminium and soft-touch silicone'],
            be: ['tops up your phone overnight without a cable', 'charges a phone, watch and earbuds together'],
          }),
          noun('Car Mount', 8, 35, 90, 200, {
            q: ['Magnetic', 'Vent', 'Dashboard'],
            f: ['one-handed mounting', 'strong N52 magnets', 'a 360° swivel'],
            m: ['aluminium alloy', 'ABS plastic'],
            be: ['holds steady on bumpy roads', 'keeps navigation in view'],
          }),
        ],
        models: ['', '', 'M#', 'Q#', 'Pro'],
        axes: [colour('Black', 'White', 'Blue', 'Pink', 'Green')],
        features: ['fast charging', 'a compact design'],
        materials: ['recycled plastics'],
        benefits: ['fits every pocket and bag'],
        uses: ['travel', 'long days out', 'the office desk', 'road trips', 'flash-sale shopping marathons'],
        extras: ['Certified for 230V mains across the region.', 'Backed by an 18-month replacement warranty.'],
      },
    ],
  },
  {
    slug: 'fashion',
    name: 'Fashion',
    description: 'Clothing, shoes, bags and traditional wear.',
    leaves: [
      {
        slug: 'womens-clothing',
        name: "Women's Clothing",
        description: 'Dresses, tops and bottoms cut for tropical weather.',
        share: 6,
        brands: ['Kain & Co.', 'Linen Lane', 'Sora Studio', 'Mekar', 'Saffron Thread'],
        quals: ['Linen', 'Cotton', 'Rayon', 'Pleated', 'Floral', 'Oversized', 'Modest'],
        nouns: [
          noun('Blouse', 12, 49, 150, 250),
          noun('Midi Dress', 19, 89, 250, 450),
          noun('Maxi Skirt', 15, 59, 250, 400),
          noun('Wide-Leg Pants', 15, 59, 300, 450),
          noun('Cardigan', 15, 59, 250, 400, { q: ['Cotton', 'Knit', 'Oversized', 'Cropped'] }),
          noun('Tunic', 12, 49, 200, 300),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [APPAREL_SIZES, colour('Ivory', 'Sage', 'Dusty Pink', 'Navy', 'Terracotta', 'Black')],
        features: ['a relaxed cut', 'hidden side pockets', 'a breathable lining', 'nursing-friendly buttons', 'an elasticated waist'],
        materials: ['breathable linen', 'soft cotton voile', 'flowing rayon', 'recycled polyester', 'Tencel lyocell'],
        benefits: ['stays cool in tropical humidity', 'drapes beautifully', 'needs no ironing after a wash'],
        uses: ['office days', 'weekend brunch', 'Hari Raya visits', 'travel', 'Lunar New Year gatherings'],
        extras: ['Machine washable at 30°C.', 'Model is 165 cm and wears size S.'],
        portrait: true,
      },
      {
        slug: 'mens-clothing',
        name: "Men's Clothing",
        description: 'Shirts, polos, chinos and shorts.',
        share: 5,
        brands: ['Kain & Co.', 'Harbour Supply', 'Sora Studio', 'Tropik'],
        quals: ['Linen', 'Performance', 'Cotton', 'Slim-Fit', 'Relaxed'],
        nouns: [
          noun('Shirt', 15, 59, 200, 300, { q: ['Oxford', 'Linen', 'Poplin', 'Slim-Fit'] }),
          noun('Polo', 12, 45, 200, 280, { q: ['Cotton Piqué', 'Performance', 'Slim-Fit'] }),
          noun('T-Shirt', 8, 29, 150, 220),
          noun('Chinos', 19, 69, 400, 550, { q: ['Stretch', 'Slim-Fit', 'Relaxed'] }),
          noun('Shorts', 12, 39, 250, 350),
          noun('Overshirt', 25, 79, 350, 500, { q: ['Linen', 'Cotton Twill', 'Corduroy'] }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'size', values: ['S', 'M', 'L', 'XL', 'XXL'] }, colour('White', 'Navy', 'Olive', 'Charcoal', 'Sand')],
        features: ['a tailored fit', 'moisture-wicking fabric', 'a stretch waistband', 'reinforced seams', 'a soft, pre-washed hand feel'],
        materials: ['combed cotton', 'breathable linen', 'recycled polyester', 'stretch twill'],
        benefits: ['stays crisp through humid afternoons', 'dries quickly', 'keeps its shape wash after wash'],
        uses: ['the office', 'weekend errands', 'date nights', 'travel', 'hawker centre lunches'],
        extras: ['Machine washable.', 'Model is 180 cm and wears size L.'],
        portrait: true,
      },
      {
        slug: 'shoes',
        name: 'Shoes',
        description: 'Sneakers, sandals and everyday shoes.',
        share: 4,
        brands: ['Stride', 'Langkah', 'Tapak', 'Harbour Supply', 'Pulse'],
        quals: ['Everyday'],
        nouns: [
          noun('Sneakers', 25, 159, 600, 900, { q: ['Canvas', 'Leather', 'Knit', 'Retro', 'Everyday'] }),
          noun('Loafers', 29, 129, 600, 850, { q: ['Leather', 'Suede', 'Penny', 'Driving'] }),
          noun('Sandals', 12, 69, 300, 600, { q: ['Leather', 'Strappy', 'Sport', 'Everyday'] }),
          noun('Slides', 8, 39, 250, 450, { q: ['Cushioned', 'Recovery', 'Rubber', 'Everyday'] }),
          noun('Running Shoes', 39, 179, 500, 750, { q: ['Road', 'Trail', 'Cushioned', 'Carbon-Plate'] }),
        ],
        models: ['', '', '#', 'Pro'],
        axes: [{ name: 'size', values: ['EU 38', 'EU 39', 'EU 40', 'EU 41', 'EU 42', 'EU 43', 'EU 44', 'EU 45'] }, colour('White', 'Black', 'Grey', 'Navy')],
        features: ['a cushioned EVA midsole', 'a grippy rubber outsole', 'a removable insole', 'a breathable upper', 'a wide toe box'],
        materials: ['full-grain leather', 'organic canvas', 'recycled knit', 'natural rubber'],
        benefits: ['stays comfortable after 20,000 steps', 'grips wet pavements in monsoon season', 'slips on and off in seconds'],
        uses: ['city walking', 'weekend trips', 'temple visits', 'the office', 'night markets'],
        extras: ['True to size; go half a size up for wide feet.', 'Free size exchanges within 30 days.'],
      },
      {
        slug: 'bags',
        name: 'Bags',
        description: 'Backpacks, totes and travel bags.',
        share: 3,
        brands: ['Kembara', 'Rattan Row', 'Harbour Supply', 'Sora Studio'],
        quals: ['Rattan', 'Canvas', 'Vegan Leather', 'Water-Resistant', 'Woven'],
        nouns: [
          noun('Tote Bag', 12, 89, 300, 700),
          noun('Backpack', 25, 149, 600, 1200, { q: ['Laptop', 'Canvas', 'Water-Resistant', 'Roll-Top'] }),
          noun('Sling Bag', 12, 69, 200, 450),
          noun('Crossbody Bag', 15, 99, 250, 500),
          noun('Duffel Bag', 29, 129, 700, 1400, { q: ['Canvas', 'Water-Resistant', 'Weekender'] }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [colour('Natural', 'Black', 'Tan', 'Olive', 'Navy')],
        features: ['a padded laptop sleeve', 'an anti-theft back pocket', 'YKK zips', 'a luggage pass-through strap', 'a detachable shoulder strap'],
        materials: ['hand-woven rattan', 'waxed canvas', 'vegan leather', 'recycled nylon'],
        benefits: ['keeps essentials dry in sudden showers', 'carries a 14-inch laptop with room to spare', 'folds flat for packing'],
        uses: ['daily commutes', 'weekend getaways', 'market runs', 'campus life', 'beach days in Bali'],
        extras: ['Handmade by artisans in Bali and Cebu.', 'Wipe clean with a damp cloth.'],
      },
      {
        slug: 'batik-traditional-wear',
        name: 'Batik & Traditional Wear',
        description: 'Batik, songket, kebaya and sarongs from across the archipelago.',
        share: 3,
        brands: ['Batik Kenanga', 'Pekalongan House', 'Sarung & Co.', 'Mekar', 'Rumah Tenun'],
        quals: ['Hand-Drawn Batik', 'Batik Cap', 'Songket', 'Ikat', 'Tenun'],
        nouns: [
          noun('Shirt', 19, 129, 200, 300, { q: ['Hand-Drawn Batik', 'Batik Cap', 'Long-Sleeve Batik', 'Ikat'] }),
          noun('Baju Kurung', 29, 159, 350, 550, { q: ['Hand-Drawn Batik', 'Batik Cap', 'Songket', 'Modern'] }),
          noun('Kebaya Top', 29, 189, 200, 350, { q: ['Peranakan', 'Nyonya', 'Embroidered'] }),
          noun('Sarong', 15, 99, 250, 400, { ax: [colour('Indigo', 'Sogan Brown', 'Emerald', 'Maroon', 'Mustard')] }),
          noun('Scarf', 12, 59, 80, 150, { ax: [colour('Indigo', 'Sogan Brown', 'Emerald', 'Maroon', 'Mustard')] }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'size', values: ['S', 'M', 'L', 'XL'] }, colour('Indigo', 'Sogan Brown', 'Emerald', 'Maroon', 'Mustard')],
        features: [
          'hand-drawn batik motifs made with a canting and wax-resist dyeing',
          'Parang and Kawung motifs from Central Java',
          'Peranakan floral embroidery',
          'gold-thread songket accents',
          'natural indigo and soga dyes',
        ],
        materials: ['fine cotton primissima', 'silk', 'rayon', 'hand-woven cotton'],
        benefits: ['carries small variations that make each piece unique', 'softens beautifully with every wash', 'is cool to wear in the tropics'],
        uses: ['Hari Raya', 'weddings', 'Batik Fridays at the office', 'Lunar New Year visits', 'formal dinners'],
        extras: ['Hand wash separately in cold water; the natural dyes may bleed.', 'Made in Pekalongan, Yogyakarta and Kelantan.'],
        portrait: true,
      },
    ],
  },
  {
    slug: 'home-living',
    name: 'Home & Living',
    description: 'Kitchen, bedding and décor.',
    leaves: [
      {
        slug: 'kitchen-dining',
        name: 'Kitchen & Dining',
        description: 'Woks, rice cookers, cookware and tableware.',
        share: 4,
        brands: ['Dapur Kita', 'Wok & Co.', 'Nori Home', 'Ember Kitchen'],
        quals: ['Classic'],
        nouns: [
          noun('Wok', 19, 89, 1200, 2500, {
            q: ['Carbon Steel', 'Cast Iron', 'Non-Stick'],
            f: ['a flat base for induction and gas', 'a long wooden handle', 'a helper handle', 'a domed lid'],
            m: ['pre-seasoned carbon steel', 'cast iron', 'PFAS-free non-stick aluminium'],
            be: ['gets properly hot for wok hei', 'develops a natural non-stick patina over time'],
            u: ['stir-fries', 'char kway teow at home', 'deep-frying', 'family dinners'],
          }),
          noun('Rice Cooker', 29, 199, 2000, 4500, {
            q: ['Fuzzy Logic', 'Induction', 'Mini', 'Digital'],
            f: ['fuzzy-logic cooking programmes', 'a keep-warm function', 'a 24-hour delay timer', 'a removable steam vent'],
            m: ['a ceramic-coated inner pot', 'a stainless steel inner pot'],
            be: ['cooks fluffy jasmine rice every time', 'makes claypot-style rice with a crispy base'],
            u: ['nasi lemak Sundays', 'busy weeknights', 'brown rice and congee', 'family dinners'],
            x: ['Plugs fit standard sockets across the region; 220-240V.'],
          }),
          noun('Frying Pan', 15, 79, 800, 1600, {
            q: ['Non-Stick', 'Stainless Steel', 'Cast Iron'],
            f: ['an induction-ready base', 'a stay-cool handle', 'a PFAS-free coating', 'oven-safe construction'],
            m: ['forged aluminium', 'tri-ply stainless steel', 'cast iron'],
            be: ['cleans up in seconds', 'heats evenly edge to edge'],
          }),
          noun('Knife Set', 25, 149, 600, 1500, {
            q: ['Stainless Steel', 'Damascus Steel', 'Ceramic'],
            f: ['full-tang handles', 'a 15° edge', 'a magnetic block'],
            m: ['German stainless steel', 'layered Damascus steel', 'zirconia ceramic'],
            be: ['slices through pineapple and pumpkin with ease', 'stays sharp for months'],
          }),
          noun('Steamer Basket', 9, 39, 300, 700, {
            q: ['Bamboo', 'Stainless Steel'],
            f: ['two stackable tiers', 'a tight-fitting lid'],
            m: ['natural bamboo', 'stainless steel'],
            be: ['steams dim sum and pau just like a restaurant'],
            u: ['steaming dim sum', 'Hari Raya kuih', 'healthy fish dishes', 'reheating leftovers'],
          }),
          noun('Dinner Plate Set', 19, 99, 2000, 4500, {
            q: ['Ceramic', 'Stoneware', 'Melamine', 'Peranakan'],
            f: ['service for four', 'a chip-resistant glaze', 'microwave- and dishwasher-safe pieces'],
            m: ['hand-glazed ceramic', 'stoneware', 'melamine'],
            be: ['stacks neatly in small cabinets', 'makes everyday meals look special'],
          }),
          noun('Air Fryer', 49, 199, 3500, 6000, {
            q: ['Digital', 'Dual-Basket', 'Compact'],
            f: ['a 5.5-litre basket', 'eight presets', 'a viewing window', 'dishwasher-safe parts'],
            m: ['a PFAS-free non-stick basket'],
            be: ['crisps chicken wings with a spoonful of oil', 'reheats curry puffs better than a microwave'],
            x: ['Plugs fit standard sockets across the region; 220-240V.'],
          }),
          noun('Claypot', 12, 49, 1500, 3000, {
            q: ['Ceramic', 'Glazed'],
            f: ['a glazed interior', 'a wire-reinforced base', 'a tight lid'],
            m: ['natural clay'],
            be: ['gives claypot chicken rice its smoky crust', 'keeps soups hot at the table'],
          }),
        ],
        models: ['', '', '#', 'Pro'],
        axes: [{ name: 'size', values: ['Small', 'Medium', 'Large'], price: [1, 1.2, 1.45], grams: [0.8, 1, 1.25] }, colour('Black', 'Cream', 'Sage')],
        features: ['a durable build'],
        materials: ['food-safe materials'],
        benefits: ['cleans up in seconds'],
        uses: ['stir-fries', 'nasi lemak Sundays', 'family dinners', 'meal prep', 'Lunar New Year reunion dinners'],
        extras: ['Comes with a recipe card for sambal fried rice.', 'Rinse and dry before first use.'],
      },
      {
        slug: 'bedding-bath',
        name: 'Bedding & Bath',
        description: 'Sheets, pillows and towels made for hot nights.',
        share: 3,
        brands: ['Tidur', 'Nori Home', 'Linen Lane', 'Kapas'],
        quals: ['Bamboo', 'Cotton', 'Cooling', 'Microfibre', 'Tencel'],
        nouns: [
          noun('Bedsheet Set', 25, 129, 900, 1800),
          noun('Comforter', 39, 179, 1500, 3000),
          noun('Pillow', 12, 59, 600, 1200, { ax: [{ name: 'size', values: ['Standard', 'King'], price: [1, 1.3] }, colour('White', 'Grey')] }),
          noun('Towel', 9, 39, 400, 800, {
            q: ['Cotton', 'Bamboo', 'Waffle', 'Quick-Dry'],
            ax: [{ name: 'size', values: ['Hand', 'Bath', 'Bath Sheet'], price: [0.5, 1, 1.5], grams: [0.4, 1, 1.6] }, colour('White', 'Grey', 'Sage', 'Blush')],
          }),
          noun('Bolster', 12, 39, 600, 1200, { ax: [colour('White', 'Grey', 'Sage', 'Blush')] }),
          noun('Mattress Topper', 59, 249, 3000, 7000, { q: ['Cooling Gel', 'Memory Foam', 'Latex'] }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [
          { name: 'size', values: ['Single', 'Super Single', 'Queen', 'King'], price: [1, 1.1, 1.25, 1.4], grams: [0.8, 0.9, 1.1, 1.25] },
          colour('White', 'Grey', 'Sage', 'Blush'),
        ],
        features: ['a 400 thread count', 'an OEKO-TEX certified finish', 'a cooling, moisture-wicking weave', 'hypoallergenic materials'],
        materials: ['long-staple cotton', 'bamboo viscose', 'Tencel lyocell', 'natural latex'],
        benefits: ['sleeps cool on humid nights without air-conditioning', 'gets softer with every wash', 'dries fast in the sun'],
        uses: ['hot sleepers', 'guest rooms', 'new homes', 'the master bedroom', 'wedding gifts'],
        extras: ['Wash at 40°C before first use.'],
      },
      {
        slug: 'home-decor',
        name: 'Home Décor',
        description: 'Lighting, planters, mirrors and storage.',
        share: 3,
        brands: ['Rattan Row', 'Nori Home', 'Rumah', 'Lantern & Leaf'],
        quals: ['Rattan'],
        nouns: [
          noun('Pendant Lamp', 29, 199, 800, 2500, { q: ['Rattan', 'Capiz Shell', 'Bamboo', 'Ceramic'], f: ['an E27 bulb fitting', 'an adjustable cord', 'a hand-finished shade'], m: ['hand-woven rattan', 'capiz shell', 'split bamboo', 'glazed ceramic'], be: ['casts soft, dappled light'] }),
          noun('Planter', 9, 69, 500, 3000, { q: ['Ceramic', 'Terrazzo', 'Teak', 'Seagrass'], f: ['a drainage hole and saucer', 'a hand-finished surface'], m: ['glazed ceramic', 'speckled terrazzo', 'reclaimed teak', 'woven seagrass'], be: ['suits a monstera as well as a snake plant'] }),
          noun('Wall Mirror', 25, 179, 2000, 6000, { q: ['Rattan', 'Teak', 'Arched', 'Round'], f: ['bevelled glass', 'wall-mounting hardware', 'a hand-woven frame'], m: ['hand-woven rattan', 'reclaimed teak', 'brushed brass'], be: ['makes a small room feel twice the size'] }),
          noun('Storage Basket', 9, 49, 300, 900, { q: ['Seagrass', 'Rattan', 'Water Hyacinth'], f: ['sturdy handles', 'a removable cotton liner'], m: ['woven seagrass', 'hand-woven rattan', 'water hyacinth'], be: ['hides clutter in style'] }),
          noun('Vase', 12, 79, 400, 1500, { q: ['Ceramic', 'Terrazzo', 'Glass', 'Stoneware'], f: ['a watertight glaze', 'a weighted base'], m: ['glazed ceramic', 'speckled terrazzo', 'recycled glass', 'stoneware'], be: ['looks good with or without flowers'] }),
          noun('Side Table', 39, 249, 3000, 8000, { q: ['Teak', 'Rattan', 'Terrazzo'], f: ['a solid-wood top', 'tool-free assembly'], m: ['reclaimed teak', 'hand-woven rattan', 'speckled terrazzo'], be: ['fits beside any sofa or bed'] }),
          noun('Scented Candle', 9, 39, 200, 500, {
            q: ['Pandan', 'Lemongrass', 'Frangipani', 'Kaffir Lime', 'Oud'],
            ax: [{ name: 'size', values: ['Small', 'Medium', 'Large'], price: [1, 1.35, 1.8], grams: [0.7, 1, 1.4] }],
            f: ['a 40-hour burn time', 'a cotton wick', 'a reusable glass jar'],
            m: ['soy wax', 'coconut wax'],
            be: ['fills the room with a calm, clean scent'],
          }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'size', values: ['Small', 'Medium', 'Large'], price: [1, 1.35, 1.8], grams: [0.7, 1, 1.4] }, colour('Natural', 'White', 'Black')],
        features: ['a hand-finished surface', 'artisan craftsmanship'],
        materials: ['natural materials'],
        benefits: ['adds warmth to any HDB flat or condo', 'brings a resort feel home'],
        uses: ['living rooms', 'balcony gardens', 'bedside corners', 'housewarming gifts', 'Deepavali and Hari Raya open houses'],
        extras: ['Each piece is handmade, so texture and colour vary slightly.'],
      },
    ],
  },
  {
    slug: 'beauty',
    name: 'Beauty',
    description: 'Skincare, makeup and hair care for tropical climates.',
    leaves: [
      {
        slug: 'skincare',
        name: 'Skincare',
        description: 'Serums, moisturisers and sunscreens.',
        share: 5,
        brands: ['Jeju Dew', 'Sakura Lab', 'Kulit', 'Glow Theory', 'Pure Botanica'],
        quals: ['Hydrating', 'Brightening', 'Calming', 'Vitamin C', 'Niacinamide', 'Centella', 'Rice Water'],
        nouns: [
          noun('Serum', 9, 59, 60, 150),
          noun('Moisturiser', 9, 49, 80, 200),
          noun('Sunscreen SPF50+', 7, 29, 60, 150, {
            q: ['Hydrating', 'Matte', 'Tinted', 'Mineral'],
            ax: [{ name: 'size', values: ['50ml', '100ml'], price: [1, 1.7], grams: [1, 1.8] }],
            f: ['PA++++ UVA protection', 'a water-resistant formula', 'no white cast', 'a fragrance-free formula'],
          }),
          noun('Cleanser', 6, 25, 120, 250),
          noun('Toner', 7, 29, 150, 300),
          noun('Sheet Mask Pack', 5, 25, 100, 250, { ax: [{ name: 'pack', values: ['5 Masks', '10 Masks'], price: [1, 1.8], grams: [1, 2] }] }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'size', values: ['30ml', '50ml', '100ml'], price: [1, 1.5, 2.5], grams: [0.6, 1, 1.8] }],
        features: ['hyaluronic acid and ceramides', 'a fragrance-free formula', '5% niacinamide', 'centella asiatica extract', 'fermented rice water'],
        materials: ['a lightweight gel texture', 'a silky emulsion', 'plant-derived squalane'],
        benefits: ['sinks in fast without stickiness in humid weather', 'calms redness overnight', 'leaves skin glowing, not greasy'],
        uses: ['morning routines under makeup', 'after-sun care', 'sensitive skin', 'oily and combination skin'],
        extras: ['Dermatologist tested and halal certified.', 'Cruelty-free; not tested on animals.'],
      },
      {
        slug: 'makeup',
        name: 'Makeup',
        description: 'Cushions, tints and long-wear makeup.',
        share: 3,
        brands: ['Glow Theory', 'Sakura Lab', 'Warna', 'Lumière Belle'],
        quals: ['Matte', 'Dewy', 'Long-Wear', 'Transfer-Proof', 'Satin'],
        nouns: [
          noun('Cushion Foundation', 12, 45, 40, 90, { ax: [{ name: 'shade', values: ['01 Light', '02 Light-Medium', '03 Medium', '04 Tan', '05 Deep'] }] }),
          noun('Lip Tint', 5, 19, 10, 25),
          noun('Lipstick', 7, 29, 15, 30),
          noun('Mascara', 6, 25, 15, 30, { q: ['Waterproof', 'Volumising', 'Lengthening'], ax: [{ name: 'shade', values: ['Black', 'Brown'] }] }),
          noun('Eyeliner', 5, 19, 5, 15, { q: ['Waterproof', 'Gel', 'Brush-Tip'], ax: [{ name: 'shade', values: ['Black', 'Brown', 'Navy'] }] }),
          noun('Setting Powder', 8, 35, 20, 50, { ax: [{ name: 'shade', values: ['Translucent', '01 Light', '03 Medium', '05 Deep'] }] }),
          noun('Blush', 6, 25, 10, 30, { ax: [{ name: 'shade', values: ['Peach', 'Rose', 'Coral', 'Berry'] }] }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'shade', values: ['Nude', 'Rose', 'Coral', 'Brick', 'Berry', 'Red'] }],
        features: ['12-hour wear', 'a buildable finish', 'a sweat- and humidity-proof formula', 'a refillable case'],
        materials: ['a weightless, breathable texture', 'a creamy, blendable formula', 'a finely milled formula'],
        benefits: ['survives a hot commute and a night out', 'never looks cakey', 'stays put through mask wearing'],
        uses: ['everyday looks', 'weddings', 'office days', 'festival nights', 'photoshoots'],
        extras: ['Halal certified.', 'Shades developed for Southeast Asian skin tones.'],
      },
      {
        slug: 'hair-care',
        name: 'Hair Care',
        description: 'Shampoos, conditioners and treatments.',
        share: 2,
        brands: ['Pure Botanica', 'Rambut', 'Kulit', 'Sakura Lab'],
        quals: ['Anti-Dandruff', 'Hair Fall Control', 'Virgin Coconut', 'Argan Oil', 'Ginseng', 'Pandan & Aloe'],
        nouns: [
          noun('Shampoo', 4, 19, 280, 550),
          noun('Conditioner', 4, 19, 280, 550),
          noun('Hair Mask', 7, 29, 200, 400, { ax: [{ name: 'size', values: ['200ml', '500ml'], price: [1, 2] }] }),
          noun('Scalp Tonic', 9, 35, 120, 250, { ax: [{ name: 'size', values: ['100ml', '200ml'], price: [1, 1.8] }] }),
          noun('Hair Oil', 7, 29, 80, 150, { ax: [{ name: 'size', values: ['50ml', '100ml'], price: [1, 1.8] }] }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'size', values: ['250ml', '500ml', '1L'], price: [1, 1.7, 3], grams: [0.5, 1, 2] }],
        features: ['sulphate-free cleansers', 'cold-pressed coconut oil', 'ginseng root extract', 'a zinc pyrithione formula', 'a silicone-free formula'],
        materials: ['plant-based ingredients', 'natural oils'],
        benefits: ['controls oil in hot weather', 'reduces hair fall in four weeks', 'leaves hair soft and frizz-free despite the humidity'],
        uses: ['daily washing', 'oily scalps', 'colour-treated hair', 'after swimming'],
        extras: ['Made in Malaysia.', 'Recyclable bottle.'],
      },
    ],
  },
  {
    slug: 'groceries',
    name: 'Groceries',
    description: 'Coffee, tea, snacks and pantry staples from around the region.',
    leaves: [
      {
        slug: 'coffee-tea',
        name: 'Coffee & Tea',
        description: 'Regional coffees, teas and matcha.',
        share: 4,
        brands: ['Kopi Roast Co.', 'Saigon Phin'],
        quals: ['Single-Origin'],
        nouns: [
          noun('Coffee Beans', 8, 29, 250, 280, {
            q: ['Sumatra Mandheling Arabica', 'Dalat Robusta', 'Sabah Liberica', 'Chiang Rai Arabica', 'Benguet Arabica', 'Toraja Arabica'],
            b: ['Kopi Roast Co.', 'Highland Leaf', 'Saigon Phin'],
          }),
          noun('Ground Coffee', 6, 25, 250, 280, {
            q: ['Vietnamese Phin', 'Kopi O', 'Hainanese', 'Dark Roast'],
            b: ['Kopi Roast Co.', 'Saigon Phin', 'Teh Tarik House'],
            f: ['a medium-coarse grind for phin and French press', 'a butter-roasted finish', 'a smooth, low-acid finish', 'notes of dark chocolate and caramel'],
          }),
          noun('3-in-1 Kopi Sachets', 4, 12, 300, 600, {
            q: ['Ipoh White', 'Hazelnut', 'Less Sugar', 'Tongkat Ali'],
            b: ['Kopi Roast Co.', 'Teh Tarik House'],
            ax: [{ name: 'pack', values: ['15 Sachets', '30 Sachets', '50 Sachets'], price: [1, 1.8, 2.8], grams: [1, 2, 3.3] }],
            f: ['creamer and cane sugar already mixed in', 'individually sealed sachets', 'a rich, creamy cup'],
            m: ['instant Robusta coffee and non-dairy creamer'],
            be: ['makes a kopi in 30 seconds with hot water', 'fits in every desk drawer'],
          }),
          noun('Tea Leaves', 6, 39, 100, 150, {
            q: ['Alishan Oolong', 'Jasmine Green', 'Cameron Highlands Black', 'Thai Milk Tea', 'Pu-erh'],
            b: ['Highland Leaf', 'Teh Tarik House'],
            ax: [{ name: 'weight', values: ['100g', '250g', '500g'], price: [1, 2.2, 4], grams: [1, 2.4, 4.7] }],
            f: ['a floral, honey-sweet aroma', 'whole-leaf quality', 'a long, sweet finish', 'up to five infusions per serving'],
            m: ['hand-picked first-flush leaves', 'high-mountain tea leaves'],
            be: ['brews a golden, fragrant cup', 'makes a silky teh tarik with condensed milk'],
            u: ['afternoon tea with kuih', 'gongfu brewing', 'iced milk tea', 'office pantries'],
          }),
          noun('Matcha Powder', 12, 45, 30, 100, {
            q: ['Uji Ceremonial', 'Culinary Grade', 'Organic'],
            b: ['Matcha Mori', 'Highland Leaf'],
            ax: [{ name: 'weight', values: ['30g', '100g'], price: [1, 2.8], grams: [1, 3] }],
            f: ['a vibrant green colour', 'a smooth, umami-rich taste', 'stone-ground fineness'],
            m: ['shade-grown, stone-ground tencha leaves'],
            be: ['makes a silky matcha latte', 'whisks to a fine froth'],
            u: ['matcha lattes', 'baking', 'morning rituals', 'iced matcha with oat milk'],
          }),
          noun('Drip Coffee Bags', 6, 19, 120, 200, {
            q: ['House Blend', 'Arabica', 'Decaf'],
            b: ['Kopi Roast Co.', 'Saigon Phin', 'Highland Leaf'],
            ax: [{ name: 'pack', values: ['10 Bags', '20 Bags', '40 Bags'], price: [1, 1.8, 3.2], grams: [1, 2, 4] }],
          }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'weight', values: ['250g', '500g', '1kg'], price: [1, 1.8, 3.3], grams: [1, 2, 4] }],
        features: ['notes of dark chocolate and caramel', 'beans roasted within the week', 'a smooth, low-acid finish', 'a medium-dark roast'],
        materials: ['beans from smallholder farms', 'shade-grown coffee cherries', 'sun-dried, hand-sorted beans'],
        benefits: ['brews a bold cup for kopi peng', 'stays fresh in a resealable valve bag'],
        uses: ['phin filter brewing', 'pour-over mornings', 'iced lattes', 'office pantries', 'kopi with kaya toast'],
        extras: ['Best before 12 months from roasting.', 'Halal certified; store in a cool, dry place.'],
      },
      {
        slug: 'snacks-sweets',
        name: 'Snacks & Sweets',
        description: 'Chips, cookies, kuih and regional treats.',
        share: 4,
        brands: ['Makan Makan', 'Crispy Nonya', 'Lolo Snacks'],
        quals: ['Original'],
        nouns: [
          noun('Potato Chips', 2, 9, 80, 200, {
            q: ['Salted Egg', 'Sambal', 'Seaweed', 'Tom Yum', 'Truffle'],
            f: ['a crunchy, airy bite', 'no artificial colouring', 'kettle-cooked slices'],
            m: ['thin-sliced potatoes fried in sunflower oil'],
          }),
          noun('Fish Skin', 4, 12, 80, 150, {
            q: ['Salted Egg', 'Mala', 'Seaweed', 'Chilli Lime'],
            f: ['a crunchy, airy bite', 'a sweet-savoury balance', 'a recipe from a Singapore zi char kitchen'],
            m: ['crispy salmon skin', 'fried fish skin and curry leaves'],
          }),
          noun('Mochi', 3, 12, 150, 300, {
            q: ['Durian', 'Mango', 'Matcha', 'Pandan', 'Black Sesame'],
            b: ['Durian King', 'Pandan Leaf Bakery', 'Makan Makan'],
            f: ['a soft, chewy skin', 'a generous filling', 'no preservatives'],
            m: ['glutinous rice flour', 'real fruit puree'],
            be: ['tastes best chilled', 'makes a light, sweet treat'],
          }),
          noun('Chiffon Cake', 6, 19, 350, 600, {
            q: ['Pandan', 'Ondeh-Ondeh', 'Coconut', 'Durian'],
            b: ['Pandan Leaf Bakery', 'Durian King'],
            f: ['a light, fluffy crumb', 'no artificial colouring', 'a family recipe from Penang'],
            m: ['fresh pandan leaves and coconut milk', 'free-range eggs'],
            be: ['stays moist for days', 'pairs perfectly with kopi'],
          }),
          noun('Pineapple Tarts', 8, 29, 300, 600, {
            q: ['Classic', 'Nyonya', 'Butter'],
            b: ['Crispy Nonya', 'Pandan Leaf Bakery'],
            f: ['a buttery, melt-in-the-mouth pastry', 'slow-cooked pineapple jam', 'a family recipe from Penang'],
            m: ['Sarawak pineapples and New Zealand butter'],
            be: ['travels well as a gift', 'disappears fast during Lunar New Year'],
          }),
          noun('Dried Mango', 3, 12, 100, 250, {
            q: ['Cebu', 'Chewy', 'Chilli'],
            b: ['Lolo Snacks', 'Makan Makan'],
            f: ['no added preservatives', 'a chewy, tangy bite'],
            m: ['sun-ripened Cebu mangoes', 'Thai Nam Dok Mai mangoes'],
            be: ['makes a healthy desk snack'],
          }),
          noun('Kaya Spread', 3, 10, 250, 450, {
            q: ['Pandan', 'Hainanese', 'Nyonya'],
            b: ['Pandan Leaf Bakery', 'Crispy Nonya'],
            f: ['a silky texture', 'no preservatives', 'hours of slow stirring'],
            m: ['coconut milk, eggs and gula melaka', 'fresh pandan leaves'],
            be: ['turns toast into a kopitiam breakfast'],
            u: ['kaya toast breakfasts', 'afternoon tea', 'hampers'],
          }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [{ name: 'pack', values: ['Single', '3-Pack', '6-Pack'], price: [1, 2.7, 5], grams: [1, 3, 6] }],
        features: ['no artificial colouring'],
        materials: ['natural ingredients'],
        benefits: ['is dangerously easy to finish in one sitting', 'stays crisp in the resealable pouch'],
        uses: ['movie nights', 'office snacking', 'Lunar New Year gifting', 'road trips', 'hampers'],
        extras: ['May contain egg, dairy and nuts.', 'Halal certified.'],
      },
      {
        slug: 'sauces-condiments',
        name: 'Sauces & Condiments',
        description: 'Sambal, fish sauce, pastes and pantry sauces.',
        share: 3,
        brands: ['Sambal Nyonya', 'Dapur Kita', "Ibu's Kitchen", 'Saigon Pantry', 'Chilli Padi Co.'],
        quals: ['Premium'],
        nouns: [
          noun('Sambal {q}', 3, 12, 200, 450, {
            q: ['Belacan', 'Ijo', 'Matah', 'Bawang', 'Oelek', 'Hae Bee Hiam'],
            b: ['Sambal Nyonya', 'Dapur Kita', "Ibu's Kitchen", 'Chilli Padi Co.'],
            f: ['fresh bird’s eye chillies', 'fermented shrimp paste', 'no MSG', 'a slow-cooked, smoky depth'],
          }),
          noun('{q} Fish Sauce', 3, 15, 300, 800, {
            q: ['Phu Quoc', 'Premium Anchovy', 'First-Press'],
            b: ['Saigon Pantry', 'Dapur Kita'],
            f: ['a 40°N protein rating', 'anchovies fermented for 12 months', 'no added MSG'],
            m: ['wild anchovies and sea salt'],
            be: ['adds deep umami to every dish'],
            u: ['nuoc cham dipping sauce', 'marinades', 'Thai salads', 'pho broth'],
          }),
          noun('{q} Kecap Manis', 2, 8, 300, 700, {
            q: ['Original', 'Extra Thick'],
            b: ["Ibu's Kitchen", 'Dapur Kita'],
            f: ['a thick, glossy pour', 'no preservatives'],
            m: ['palm sugar and fermented soybeans'],
            be: ['caramelises beautifully on satay'],
          }),
          noun('{q} Chilli Crisp', 4, 12, 200, 350, {
            q: ['Mala', 'Garlic', 'Shallot'],
            f: ['crunchy fried garlic and shallots', 'a numbing Sichuan pepper kick', 'no MSG'],
            m: ['sun-dried chillies and rapeseed oil'],
          }),
          noun('{q} Paste', 3, 10, 200, 400, {
            q: ['Laksa', 'Rendang', 'Tom Yum', 'Green Curry', 'Nasi Lemak Sambal'],
            f: ['an authentic family recipe', 'no preservatives', 'a ready-to-cook blend of fresh spices'],
            m: ['lemongrass, galangal and shallots', 'dried chillies and spices'],
            be: ['gets dinner on the table in 20 minutes'],
          }),
          noun('{q} Oyster Sauce', 2, 9, 300, 700, {
            q: ['Premium', 'Superior', 'Double-Strength'],
            b: ['Dapur Kita', 'Saigon Pantry'],
            f: ['a rich, glossy finish', 'no MSG'],
            m: ['real oyster extract'],
            be: ['gives stir-fried greens a restaurant finish'],
          }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [PACKS],
        features: ['no MSG'],
        materials: ['sun-dried chillies', 'palm sugar', 'lemongrass, galangal and shallots'],
        benefits: ['brings instant heat to fried rice', 'turns plain noodles into a meal', 'keeps for months in the fridge'],
        uses: ['nasi lemak', 'weeknight stir-fries', 'dipping sauces', 'barbecue marinades', 'laksa from scratch'],
        extras: ['Refrigerate after opening.', 'Made in small batches in Melaka and Saigon.'],
      },
    ],
  },
  {
    slug: 'sports-outdoors',
    name: 'Sports & Outdoors',
    description: 'Fitness gear and outdoor equipment.',
    leaves: [
      {
        slug: 'fitness',
        name: 'Fitness',
        description: 'Home workout and gym equipment.',
        share: 3,
        brands: ['Stride', 'Pulse', 'Kuat', 'FlexCore'],
        quals: ['Pro'],
        nouns: [
          noun('Yoga Mat', 12, 69, 900, 2500, {
            q: ['Non-Slip', 'Eco', 'Travel', 'Extra-Thick'],
            f: ['a non-slip textured surface', '6 mm cushioning', 'alignment lines', 'a carry strap'],
            m: ['natural tree rubber', 'TPE foam', 'cork'],
            be: ['stays put on tiled floors', 'rolls up small enough for a condo gym'],
          }),
          noun('Dumbbell Set', 29, 249, 5000, 20000, {
            q: ['Adjustable', 'Neoprene', 'Hex'],
            f: ['quick-adjust dials', 'anti-roll hex heads', 'a storage tray'],
            m: ['powder-coated steel', 'neoprene-coated iron'],
            be: ['replaces a rack of weights in a small apartment'],
          }),
          noun('Resistance Bands', 6, 29, 150, 500, {
            q: ['Fabric', 'Latex', 'Loop'],
            f: ['five resistance levels', 'a door anchor', 'padded handles'],
            m: ['natural latex', 'fabric-covered latex'],
            be: ['packs into a pouch for hotel-room workouts'],
          }),
          noun('Skipping Rope', 4, 19, 100, 300, {
            q: ['Weighted', 'Speed', 'Cordless'],
            f: ['ball-bearing handles', 'an adjustable cable', 'a digital counter'],
            m: ['steel cable and foam grips'],
            be: ['fits in any gym bag'],
          }),
          noun('Foam Roller', 9, 39, 300, 900, {
            q: ['Textured', 'Vibrating', 'High-Density'],
            f: ['a textured surface', 'a hollow core'],
            m: ['EVA foam'],
            be: ['eases sore calves after a long run'],
          }),
          noun('Kettlebell', 15, 79, 4000, 16000, {
            q: ['Cast Iron', 'Vinyl', 'Adjustable'],
            f: ['a wide, smooth handle', 'a flat base'],
            m: ['cast iron', 'vinyl-coated sand'],
            be: ['covers a full-body workout with one piece of kit'],
          }),
          noun('Exercise Bike', 149, 699, 18000, 35000, {
            q: ['Foldable', 'Magnetic', 'Smart'],
            f: ['16 levels of magnetic resistance', 'a space-saving foldable frame', 'app-connected workouts', 'a tablet holder'],
            m: ['powder-coated steel'],
            be: ['runs quietly enough for flat living'],
          }),
        ],
        models: ['', '', 'Pro', '#'],
        axes: [colour('Black', 'Teal', 'Lilac', 'Grey', 'Coral')],
        features: ['sweat-resistant grips'],
        materials: ['durable materials'],
        benefits: ['fits a compact apartment'],
        uses: ['home workouts', 'yoga and pilates', 'HIIT sessions', 'physiotherapy', 'marathon training'],
        extras: ['Includes a free 30-day workout plan.'],
      },
      {
        slug: 'outdoor-camping',
        name: 'Outdoor & Camping',
        description: 'Tents, hammocks, packs and trail gear.',
        share: 3,
        brands: ['Kembara', 'Rimba', 'Summit Trail', 'Gunung'],
        quals: ['Ultralight'],
        nouns: [
          noun('Tent', 49, 399, 1500, 4500, {
            q: ['Ultralight', 'Waterproof', '2-Person', '4-Person'],
            f: ['fully taped seams', 'a built-in mosquito net', 'a 3,000 mm waterproof rating', 'two doors and vestibules'],
            m: ['ripstop nylon', 'recycled polyester'],
            be: ['shrugs off tropical downpours', 'pitches in five minutes'],
          }),
          noun('Hammock', 19, 89, 400, 1200, {
            q: ['Ultralight', 'Jungle', 'Double'],
            f: ['a built-in mosquito net', 'tree-friendly straps', 'a 200 kg load rating'],
            m: ['parachute nylon'],
            be: ['packs down smaller than a water bottle'],
          }),
          noun('Hiking Backpack', 39, 199, 900, 2000, {
            q: ['Ultralight', 'Trekking', 'Waterproof'],
            mo: ['30L', '40L', '55L'],
            f: ['a ventilated back panel', 'a rain cover', 'hip-belt pockets', 'a hydration sleeve'],
            m: ['ripstop nylon', 'recycled polyester'],
            be: ['carries a weekend of gear comfortably'],
          }),
          noun('Water Bottle', 9, 45, 250, 500, {
            q: ['Insulated', 'Collapsible', 'Filter'],
            f: ['double-wall vacuum insulation', 'a leak-proof lid', 'a built-in filter'],
            m: ['18/8 stainless steel', 'food-grade silicone'],
            be: ['keeps drinks icy for 24 hours'],
          }),
          noun('Rain Jacket', 29, 159, 250, 500, {
            q: ['Waterproof', 'Packable', 'Breathable'],
            f: ['fully taped seams', 'pit zips', 'a packable hood'],
            m: ['2.5-layer waterproof nylon'],
            be: ['shrugs off tropical downpours', 'packs into its own pocket'],
          }),
          noun('Headlamp', 9, 49, 60, 150, {
            q: ['Rechargeable', 'Waterproof', 'Ultralight'],
            f: ['a USB-C rechargeable battery', 'a red night mode', '400 lumens'],
            m: ['aircraft-grade aluminium'],
            be: ['lights up the trail for a pre-dawn summit push'],
          }),
          noun('Camping Stove', 19, 99, 300, 1500, {
            q: ['Portable', 'Butane', 'Ultralight'],
            f: ['piezo ignition', 'a wind shield', 'a foldable pot stand'],
            m: ['aircraft-grade aluminium', 'stainless steel'],
            be: ['boils a litre of water in three minutes'],
          }),
        ],
        models: ['', '', 'Pro', 'Lite'],
        axes: [colour('Forest Green', 'Orange', 'Slate', 'Sand')],
        features: ['a lightweight build'],
        materials: ['ripstop nylon'],
        benefits: ['packs down small'],
        uses: ['trekking Mount Kinabalu', 'camping on Pulau Ubin', 'climbing Rinjani', 'weekend trips to Khao Yai', 'hikes in Taroko Gorge'],
        extras: ['Comes with a lifetime repair service.'],
      },
    ],
  },
  {
    slug: 'toys-baby',
    name: 'Toys & Baby',
    description: 'Toys, games and baby essentials.',
    leaves: [
      {
        slug: 'toys',
        name: 'Toys & Games',
        description: 'Building sets, plush toys, puzzles and STEM kits.',
        share: 3,
        brands: ['Bintang Toys', 'Little Explorer', 'BrickWorks', 'Tumble'],
        quals: ['Wooden'],
        nouns: [
          noun('Train Set', 15, 89, 600, 2000, { q: ['Wooden', 'Battery-Powered', 'Magnetic'], m: ['FSC-certified rubberwood', 'BPA-free plastic'] }),
          noun('Puzzle', 6, 29, 300, 900, { q: ['Wooden', '1000-Piece', 'Floor', 'Map of Asia'], m: ['thick recycled board', 'FSC-certified rubberwood'] }),
          noun('Robot Kit', 19, 129, 400, 1500, {
            q: ['STEM', 'Coding', 'Solar'],
            f: ['programmable sensors', 'a rechargeable battery', 'a free coding app', 'step-by-step picture instructions'],
            m: ['BPA-free plastic and metal parts'],
          }),
          noun('Dinosaur', 9, 49, 200, 800, { q: ['Plush', 'Remote-Control', 'Glow-in-the-Dark'], m: ['super-soft recycled plush', 'BPA-free vinyl'] }),
          noun('Stacking Tower', 9, 35, 400, 1000, { q: ['Wooden', 'Rainbow', 'Montessori'], m: ['FSC-certified rubberwood', 'food-grade silicone'] }),
          noun('Race Car', 12, 79, 300, 1200, {
            q: ['Remote-Control', 'Off-Road', 'Drift'],
            f: ['a rechargeable battery', '2.4 GHz remote control', 'shock-absorbing wheels', 'speeds up to 20 km/h'],
            m: ['impact-resistant ABS plastic'],
          }),
          noun('Board Game', 15, 59, 600, 1500, { q: ['Family', 'Strategy', 'Party', 'Congkak'], m: ['recycled board and wooden pieces'], u: ['family game nights', 'Lunar New Year gatherings', 'ages 8 and up'] }),
        ],
        models: ['', '', 'Junior', 'Deluxe'],
        axes: [{ name: 'edition', values: ['Standard', 'Deluxe'], price: [1, 1.5], grams: [1, 1.4] }],
        features: ['rounded, child-safe edges', 'non-toxic, water-based finishes', 'step-by-step picture instructions', 'a sturdy storage box', 'bright, fade-resistant colours'],
        materials: ['BPA-free plastic'],
        benefits: ['keeps little hands busy for hours', 'builds fine motor skills', 'survives being thrown across the room'],
        uses: ['ages 3 and up', 'birthday presents', 'rainy afternoons', 'family game nights', 'early STEM learning'],
        extras: ['Meets EN71 and ASTM toy safety standards.', 'Contains small parts; not for children under 3.'],
      },
      {
        slug: 'baby-care',
        name: 'Baby Care',
        description: 'Nappies, swaddles, carriers and feeding.',
        share: 2,
        brands: ['Si Kecil', 'Little Explorer', 'Bayi Bliss', 'Tumble'],
        quals: ['Ultra-Soft'],
        nouns: [
          noun('Swaddle Blanket', 9, 39, 150, 400, {
            q: ['Organic Cotton', 'Bamboo', 'Muslin'],
            f: ['a breathable muslin weave', 'a generous 120 x 120 cm size', 'pre-washed softness'],
            m: ['organic cotton muslin', 'bamboo viscose'],
            be: ['keeps newborns snug and cool in tropical heat'],
          }),
          noun('Baby Carrier', 39, 169, 600, 1100, {
            q: ['Ergonomic', 'Hip-Seat', 'Ring Sling'],
            f: ['an ergonomic M-position seat', 'lumbar support', 'adjustable buckles', 'a breathable mesh panel'],
            m: ['breathable cotton', '3D air mesh'],
            be: ['spreads the weight evenly on long walks'],
          }),
          noun('Tape Diapers', 9, 29, 1200, 2500, {
            q: ['Ultra-Soft', 'Overnight', 'Hypoallergenic'],
            ax: [{ name: 'size', values: ['NB', 'S', 'M', 'L', 'XL'] }],
            f: ['a wetness indicator', 'breathable, rash-free layers', '12-hour absorbency', 'a soft elastic waistband'],
            m: ['plant-based fibres', 'ultra-soft non-woven fabric'],
            be: ['keeps babies dry through the night'],
          }),
          noun('Baby Wipes', 4, 15, 500, 1500, {
            q: ['Water-Based', 'Hypoallergenic', 'Fragrance-Free'],
            ax: [{ name: 'pack', values: ['Single', '3-Pack', '12-Pack'], price: [1, 2.7, 9.5], grams: [1, 3, 12] }],
            f: ['99% purified water', 'no fragrance or alcohol', 'a resealable lid'],
            m: ['plant-based fibres'],
            be: ['cleans gently enough for newborn skin'],
          }),
          noun('Feeding Bottle Set', 12, 49, 300, 700, {
            q: ['Anti-Colic', 'Glass', 'Wide-Neck'],
            ax: [{ name: 'size', values: ['150ml', '260ml'], price: [1, 1.15] }],
            f: ['an anti-colic vent', 'a wide neck for easy cleaning', 'slow-flow teats'],
            m: ['BPA-free polypropylene', 'borosilicate glass'],
            be: ['reduces fussing after feeds'],
          }),
          noun('Bib Set', 6, 19, 100, 250, {
            q: ['Silicone', 'Waterproof', 'Bandana'],
            f: ['a crumb-catcher pocket', 'an adjustable snap'],
            m: ['food-grade silicone', 'waterproof cotton'],
            be: ['wipes clean in seconds'],
          }),
        ],
        models: [''],
        template: '{brand} {qual} {noun}',
        axes: [colour('Cloud White', 'Sage', 'Peach', 'Sky Blue')],
        features: ['BPA-free parts'],
        materials: ['organic cotton'],
        benefits: ['stays cool in tropical heat'],
        uses: ['newborns', 'nap time', 'travel', 'baby showers', 'daycare bags'],
        extras: ['Dermatologically tested on sensitive skin.'],
      },
    ],
  },
  {
    slug: 'books-stationery',
    name: 'Books & Stationery',
    description: 'Books by regional writers, planners and art supplies.',
    leaves: [
      {
        slug: 'books',
        name: 'Books',
        description: 'Cookbooks, guides, fiction and picture books.',
        share: 3,
        brands: ['Straits Editions', 'Kampung Press', 'Tiger Lily Books', 'Lantern Press'],
        quals: ['Hawker', 'Nyonya', 'Monsoon', 'Mekong', 'Island', 'Kampung', 'Night Market', 'Durian Season', 'Typhoon'],
        nouns: [
          noun('Cookbook', 15, 45, 600, 1200, {
            q: ['Hawker', 'Nyonya', 'Kampung', 'Night Market', 'Mekong', 'Island'],
            f: ['over 100 step-by-step recipes', 'full-colour photography', 'a guide to regional ingredients'],
            be: ['lies flat on the kitchen counter'],
            u: ['home cooks', 'new cooks leaving home', 'coffee tables'],
          }),
          noun('Travel Guide', 12, 29, 300, 500, { q: ['Mekong', 'Island', 'Night Market', 'Typhoon Season'], f: ['fold-out maps', 'itineraries for every budget', 'local phrasebooks'] }),
          noun('Stories', 9, 25, 250, 450),
          noun('Picture Book', 8, 19, 250, 500, { f: ['hand-painted illustrations', 'bilingual English and Bahasa text', 'rhyming text for reading aloud'], u: ['bedtime reading', 'ages 3 to 7', 'new big siblings'] }),
          noun('Photo Essays', 25, 59, 900, 1600, { f: ['over 200 photographs', 'an introduction by the photographer', 'archival-quality printing'] }),
          noun('Poems', 9, 19, 150, 300),
        ],
        models: ['', '', '', 'Vol. #'],
        template: '{qual} {noun} {model}',
        axes: [{ name: 'format', values: ['Paperback', 'Hardcover'], price: [1, 1.6], grams: [1, 1.5] }],
        features: ['an introduction by the author', 'notes on the history behind each piece', 'a new translation', 'award-winning writing'],
        materials: ['acid-free paper', 'a sewn binding', 'recycled paper stock'],
        benefits: ['makes a thoughtful gift', 'reads in a weekend'],
        uses: ['curious travellers', 'bedtime reading', 'book clubs', 'coffee tables', 'long flights'],
        extras: ['Printed in Singapore.', 'Winner of a regional book award.'],
      },
      {
        slug: 'stationery',
        name: 'Stationery',
        description: 'Notebooks, pens, planners and washi tape.',
        share: 2,
        brands: ['Kertas', 'Lantern Press', 'Inkwell', 'Sora Studio'],
        quals: ['Dotted', 'Grid', 'Recycled'],
        nouns: [
          noun('Notebook', 4, 25, 200, 450, { q: ['Dotted', 'Grid', 'Lined', 'Recycled'] }),
          noun('Pen Set', 5, 39, 50, 200, { q: ['Fountain', 'Brush', 'Gel', 'Fineliner'], f: ['quick-drying ink', 'a comfortable grip', 'refillable cartridges'], m: ['brushed aluminium barrels', 'recycled plastic barrels'], be: ['writes smoothly without smudging'] }),
          noun('2026 Planner', 9, 35, 300, 600, { q: ['Weekly', 'Daily', 'Undated'] }),
          noun('Sticker Pack', 2, 9, 20, 80, { q: ['Hawker Food', 'Batik', 'Botanical'], ax: [{ name: 'pack', values: ['Single', 'Bundle of 3'], price: [1, 2.5] }], f: ['waterproof vinyl', 'a matte finish'], m: ['waterproof vinyl'], be: ['decorates journals, laptops and water bottles'] }),
          noun('Tape Set', 3, 15, 50, 150, { q: ['Washi', 'Masking'], f: ['easy-tear edges', 'repositionable adhesive'], m: ['Japanese washi paper'], be: ['peels off without leaving residue'] }),
          noun('Sketchbook', 6, 29, 300, 700, { q: ['Watercolour', 'Mixed-Media', 'Toned'] }),
        ],
        models: ['', '', 'A5', 'A6', 'B5'],
        axes: [colour('Black', 'Sage', 'Terracotta', 'Navy', 'Cream')],
        features: ['100 gsm ink-proof paper', 'a lay-flat binding', 'numbered pages', 'an elastic closure'],
        materials: ['ink-proof cream paper', 'recycled card covers', 'vegan leather covers'],
        benefits: ['handles fountain pens without bleed-through', 'slips into any bag', 'makes planning a pleasure'],
        uses: ['bullet journalling', 'lecture notes', 'sketching on the go', 'work planning', 'scrapbooking'],
        extras: ['Designed in Kuala Lumpur.'],
      },
    ],
  },
];

const EXTRAS_ANY = [
  'Ships within 24 hours from our regional fulfilment centres.',
  'Free returns within 30 days.',
  'A shopper favourite during 11.11 and 12.12 sales.',
  'Sold and fulfilled by Pasar with tracked delivery.',
];

// ---------------------------------------------------------------------------
// Generation helpers
// ---------------------------------------------------------------------------

function slugify(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/&/g, ' and ')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Slug base capped at a word boundary, so URLs stay readable. */
function slugBase(title: string): string {
  const s = slugify(title);
  if (s.length <= 56) return s;
  const cut = s.slice(0, 56);
  const i = cut.lastIndexOf('-');
  return i > 20 ? cut.slice(0, i) : cut;
}

function fillModel(rng: Rng, pattern: string): string {
  return pattern.replace(/#/g, () => String(rng.int(1, 9)));
}

/** "a and b", unless either already contains "and" ("yoga and pilates and ..." reads badly). */
function pair(a: string, b: string): string {
  return / and /.test(a) || / and /.test(b) ? `${a} as well as ${b}` : `${a} and ${b}`;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Largest-remainder split of `total` by `shares`, so the counts add up exactly. */
function apportion(total: number, shares: readonly number[]): number[] {
  const sum = shares.reduce((a, b) => a + b, 0);
  const exact = shares.map((s) => (total * s) / sum);
  const counts = exact.map((e) => Math.floor(e));
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left-- <= 0) break;
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return counts;
}

/** Option combinations for one product: either one axis varies, or a 2x2 grid of the first two. */
function variantOptions(rng: Rng, axes: readonly Axis[], count: number): { options: Record<string, string>; price: number; grams: number }[] {
  const [first, second] = axes;
  if (!first) throw new Error('a category needs at least one option axis');
  const valueOf = (axis: Axis, v: string) => {
    const i = axis.values.indexOf(v);
    return { price: axis.price?.[i] ?? 1, grams: axis.grams?.[i] ?? 1 };
  };
  const combos: { picks: [Axis, string][] }[] = [];
  if (second && count === 4 && second.values.length >= 2 && first.values.length >= 2 && rng.chance(0.5)) {
    const as = rng.sample(first.values, 2);
    const bs = rng.sample(second.values, 2);
    for (const a of as) for (const b of bs) combos.push({ picks: [[first, a], [second, b]] });
  } else {
    // Vary the axis with the most values when the first one is short (e.g. storage 3 vs colour 6).
    const vary = second && first.values.length < count ? second : first;
    const fixed = vary === first ? second : first;
    const fixedValue = fixed ? rng.pick(fixed.values) : undefined;
    for (const v of rng.sample(vary.values, count)) {
      const picks: [Axis, string][] = [[vary, v]];
      if (fixed && fixedValue !== undefined) picks.push([fixed, fixedValue]);
      // Keep option keys in axis order for stable JSON.
      picks.sort((x, y) => axes.indexOf(x[0]) - axes.indexOf(y[0]));
      combos.push({ picks });
    }
  }
  return combos.map(({ picks }) => {
    const options: Record<string, string> = {};
    let price = 1;
    let grams = 1;
    for (const [axis, v] of picks) {
      options[axis.name] = v;
      const f = valueOf(axis, v);
      price *= f.price;
      grams *= f.grams;
    }
    return { options, price, grams };
  });
}

/** Received units for one variant in one region (class decided per variant). */
function stockFor(rng: Rng, cls: 'normal' | 'flash' | 'soldout' | 'discontinued', region: SeedRegionCode): number {
  const scale = STOCK_SCALE[region];
  switch (cls) {
    case 'soldout':
    case 'discontinued':
      return 0;
    case 'flash':
      return Math.round((5_000 + rng.int(0, 15_000)) * scale);
    case 'normal': {
      const u = rng.next();
      if (u < 0.05) return 0;
      if (u < 0.13) return rng.int(1, 5);
      const v = rng.next();
      // Cubic skew: most variants hold tens of units, a few hold hundreds.
      return 6 + Math.floor(v * v * v * 600 * scale);
    }
  }
}

/** The effective phrase banks for one noun: its own where given, else its category's. */
function banksFor(spec: LeafSpec, n: Noun) {
  const bank = {
    brands: n.b ?? spec.brands,
    quals: n.q ?? spec.quals,
    models: n.mo ?? spec.models ?? [''],
    axes: n.ax ?? spec.axes,
    features: n.f ?? spec.features,
    materials: n.m ?? spec.materials,
    benefits: n.be ?? spec.benefits,
    uses: n.u ?? spec.uses,
    extras: n.x ?? spec.extras,
  };
  // Descriptions pick two distinct features and uses.
  if (bank.features.length < 2 || bank.uses.length < 2 || bank.axes.length === 0) {
    throw new Error(`seed vocabulary too thin for ${spec.slug}/${n.n}`);
  }
  return bank;
}

function dateAt(ms: number): Date {
  return new Date(ms);
}

// ---------------------------------------------------------------------------
// buildSeed
// ---------------------------------------------------------------------------

/**
 * Generates the whole seed catalog in memory. Pure: no I/O, no clock, no
 * `Math.random`; every call returns deep-equal data (see `seedChecksum`).
 *
 * Shape: 7 regions; 8 top-level and 26 leaf categories; 2,400 products on the
 * leaves (~2 % draft, ~1 % archived, ~5 % sold in only some regions, ~15 % on
 * sale with a compare-at price); 1-4 variants each, priced and stocked in
 * every region the product is sold in; 1-3 media rows per product.
 */
export function buildSeed(): SeedData {
  const regions = regionRows();
  const regionByCode = new Map(regions.map((r) => [r.code, r]));

  // Categories ---------------------------------------------------------------
  const catRng = new Rng('categories');
  const categories: CategoryRow[] = [];
  const leaves: { spec: LeafSpec; id: string }[] = [];
  const catCreated = dateAt(Date.UTC(2025, 5, 1));
  CATALOG.forEach((top, ti) => {
    const topId = catRng.id('cat');
    categories.push({
      id: topId,
      slug: top.slug,
      name: top.name,
      description: top.description,
      parentId: null,
      position: ti,
      createdAt: catCreated,
      updatedAt: catCreated,
    });
    top.leaves.forEach((leaf, li) => {
      const id = catRng.id('cat');
      categories.push({
        id,
        slug: leaf.slug,
        name: leaf.name,
        description: leaf.description,
        parentId: topId,
        position: li,
        createdAt: catCreated,
        updatedAt: catCreated,
      });
      leaves.push({ spec: leaf, id });
    });
  });

  // Which leaf each product belongs to, interleaved so any prefix of the
  // catalog (the first page, the fixtures) spans many categories.
  const counts = apportion(
    SEED_PRODUCT_COUNT,
    leaves.map((l) => l.spec.share),
  );
  const leafOfProduct: number[] = [];
  counts.forEach((c, i) => {
    for (let k = 0; k < c; k++) leafOfProduct.push(i);
  });
  new Rng('product-order').shuffle(leafOfProduct);

  const products: ProductRow[] = [];
  const variants: VariantRow[] = [];
  const prices: PriceRow[] = [];
  const stock: StockRow[] = [];
  const media: MediaRow[] = [];
  const slugs = new Set<string>();
  const skuNumbers = new Set<number>();
  const ids = new Set<string>();
  const uniqueId = (rng: Rng, prefix: string) => {
    for (;;) {
      const id = rng.id(prefix);
      if (!ids.has(id)) {
        ids.add(id);
        return id;
      }
    }
  };

  leafOfProduct.forEach((leafIndex, i) => {
    const leaf = leaves[leafIndex];
    if (!leaf) throw new Error('unreachable: leaf index out of range');
    const spec = leaf.spec;
    const rng = new Rng(`product:${i}`);

    // Title ------------------------------------------------------------------
    const nounSpec = rng.pick(spec.nouns);
    const bank = banksFor(spec, nounSpec);
    const brand = rng.pick(bank.brands);
    const qual = rng.pick(bank.quals);
    const model = fillModel(rng, rng.pick(bank.models));
    const inlineQual = nounSpec.n.includes('{q}');
    const template = spec.template ?? '{brand} {qual} {noun} {model}';
    const title = (inlineQual ? template.replace('{qual}', '') : template)
      .replace('{brand}', brand)
      .replace('{qual}', qual)
      .replace('{noun}', nounSpec.n.replace('{q}', qual))
      .replace('{model}', model)
      .replace(/\s+/g, ' ')
      .trim();

    let slug = '';
    do slug = `${slugBase(title)}-${rng.base32(4)}`;
    while (slugs.has(slug));
    slugs.add(slug);

    // Description: sentences whose subject is the product, so they read the
    // same for "Earbuds" (plural) and "Wok" (singular).
    const [f1 = '', f2 = ''] = rng.sample(bank.features, 2);
    const [u1 = '', u2 = ''] = rng.sample(bank.uses, 2);
    const features = pair(f1, f2);
    const openers = [
      `Shoppers choose the ${title} for ${features}.`,
      `${cap(features)} make the ${title} a favourite across the region.`,
      `Meet the ${title}, with ${features}.`,
    ];
    const sentences = [rng.pick(openers)];
    const made = `Made from ${rng.pick(bank.materials)}, it ${rng.pick(bank.benefits)}.`;
    const useFor = `Perfect for ${pair(u1, u2)}.`;
    const extra = rng.chance(0.6) ? rng.pick(bank.extras) : rng.pick(EXTRAS_ANY);
    const n = rng.int(2, 4);
    if (n === 2) sentences.push(rng.chance(0.5) ? made : useFor);
    else sentences.push(made, useFor);
    if (n === 4) sentences.push(extra);
    const description = sentences.join(' ');

    // Status, timestamps, reach ------------------------------------------------
    const s = rng.next();
    const status: ProductRow['status'] = s < 0.02 ? 'draft' : s < 0.03 ? 'archived' : 'active';
    const createdMs = BASE_MS - rng.int(1, 365) * DAY_MS + rng.int(0, DAY_MS / 1000 - 1) * 1000;
    const updatedMs = createdMs + Math.floor(rng.next() * (BASE_MS - createdMs) / 1000) * 1000;
    const createdAt = dateAt(createdMs);
    const updatedAt = dateAt(updatedMs);
    const soldIn: SeedRegionCode[] = rng.chance(0.05)
      ? rng.sample(seedRegionCodes, rng.int(1, seedRegionCodes.length - 2))
      : [...seedRegionCodes];
    const sale = rng.chance(0.15) ? rng.pick([0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]) : 0;
    const baseUsd = nounSpec.usd[0] + rng.next() * (nounSpec.usd[1] - nounSpec.usd[0]);
    const baseGrams = nounSpec.g[0] + rng.next() * (nounSpec.g[1] - nounSpec.g[0]);

    const productId = uniqueId(rng, 'prod');
    products.push({
      id: productId,
      slug,
      title,
      description,
      brand,
      categoryId: leaf.id,
      status,
      version: 1,
      createdAt,
      updatedAt,
    });

    // Variants, prices, stock ------------------------------------------------
    const maxVariants = Math.min(4, bank.axes.reduce((m, a) => Math.max(m, a.values.length), 0));
    const wanted = rng.pick([1, 1, 2, 2, 3, 3, 4, 4, 4]);
    const opts = variantOptions(rng, bank.axes, Math.min(wanted, maxVariants));
    let skuNumber = 0;
    do skuNumber = rng.int(100_000, 999_999);
    while (skuNumbers.has(skuNumber));
    skuNumbers.add(skuNumber);
    const everywhere = soldIn.length === seedRegionCodes.length;

    opts.forEach((o, vi) => {
      const variantId = uniqueId(rng, 'var');
      // A discontinued colour/size inside a live product, never the first variant.
      const discontinued = status === 'active' && vi > 0 && rng.chance(0.02);
      const vStatus: VariantRow['status'] = status !== 'active' ? status : discontinued ? 'archived' : 'active';
      variants.push({
        id: variantId,
        productId,
        sku: `PSR-${skuNumber}-${vi + 1}`,
        title: Object.values(o.options).join(' / '),
        options: o.options,
        position: vi,
        status: vStatus,
        weightGrams: Math.max(5, Math.round((baseGrams * o.grams) / 5) * 5),
        createdAt,
        updatedAt,
      });

      const usd = baseUsd * o.price;
      for (const code of soldIn) {
        const region = regionByCode.get(code);
        if (!region) throw new Error(`unreachable: region ${code}`);
        const raw = usd * FX[code].rate * FX[code].level * 10 ** region.currencyExponent;
        const amount = nicePrice(region.currency, raw);
        let compareAtAmount: number | null = null;
        if (sale > 0) {
          compareAtAmount = nicePrice(region.currency, raw / (1 - sale));
          if (compareAtAmount <= amount) compareAtAmount = amount + niceTier(region.currency, amount).step;
        }
        prices.push({ variantId, regionCode: code, currency: region.currency, amount, compareAtAmount, updatedAt });
      }

      const c = rng.next();
      const cls =
        vStatus === 'archived' && status === 'active'
          ? 'discontinued'
          : status === 'active' && everywhere && c < 0.006
            ? 'flash'
            : c < 0.018
              ? 'soldout'
              : 'normal';
      for (const code of soldIn) {
        stock.push({ variantId, regionCode: code, received: stockFor(rng, cls, code), updatedAt: dateAt(BASE_MS) });
      }
    });

    // Media ------------------------------------------------------------------
    const images = rng.int(1, 3);
    for (let m = 1; m <= images; m++) {
      media.push({
        id: uniqueId(rng, 'med'),
        productId,
        key: `seed/${slug}-${m}.jpg`,
        contentType: 'image/jpeg',
        bytes: rng.int(60_000, 450_000),
        width: 1200,
        height: spec.portrait ? 1500 : 1200,
        alt: m === 1 ? title : `${title}, view ${m}`,
        position: m - 1,
        createdAt,
      });
    }
  });

  return { regions, categories, products, variants, prices, stock, media };
}

// ---------------------------------------------------------------------------
// Checksum and fixtures
// ---------------------------------------------------------------------------

function canonical(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = canonical((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/**
 * SHA-256 (hex) over a canonical JSON of `data`: object keys sorted, dates as
 * ISO strings, row order as generated. Equal checksums mean equal catalogs.
 */
export function seedChecksum(data: SeedData): string {
  return createHash('sha256').update(JSON.stringify(canonical(data))).digest('hex');
}

/** Well-known rows for tests and benchmarks, derived from the data (see `seedFixtures`). */
export interface SeedFixtures {
  /** Five active products sold in all 7 regions whose first variant is active and in stock everywhere. */
  productSlugs: string[];
  /** The variant with the deepest stock in its thinnest region, sold everywhere: the flash-sale target. */
  hotVariantSku: string;
  hotVariantId: string;
  /** Its smallest per-region `received` (every region holds at least this many). */
  hotVariantMinReceived: number;
  /** An active variant of an active, sold-everywhere product with 0 units received in every region. */
  soldOutSku: string;
  soldOutVariantId: string;
  /** An active variant of an active product, in stock in every region, with a compare-at price everywhere. */
  onSaleSku: string;
  /** An archived variant inside an active product (a discontinued colour/size). */
  archivedVariantSku: string;
  /** An active product sold in some (at least two) but not all regions. */
  regionLimitedSlug: string;
  regionLimitedSoldIn: SeedRegionCode[];
  regionLimitedNotSoldIn: SeedRegionCode[];
  /** Hidden products. */
  draftSlug: string;
  archivedSlug: string;
  /** The leaf category with the most active products. */
  busiestCategorySlug: string;
  /** A word that full-text search finds in many titles/descriptions. */
  searchTerm: string;
}

/** Derives the fixtures from `data`; throws if the data no longer contains one of them. */
export function deriveFixtures(data: SeedData): SeedFixtures {
  const all = seedRegionCodes.length;
  const variantsByProduct = new Map<string, VariantRow[]>();
  for (const v of data.variants) {
    const list = variantsByProduct.get(v.productId) ?? [];
    list.push(v);
    variantsByProduct.set(v.productId, list);
  }
  const stockByVariant = new Map<string, StockRow[]>();
  for (const s of data.stock) {
    const list = stockByVariant.get(s.variantId) ?? [];
    list.push(s);
    stockByVariant.set(s.variantId, list);
  }
  const pricesByVariant = new Map<string, PriceRow[]>();
  for (const p of data.prices) {
    const list = pricesByVariant.get(p.variantId) ?? [];
    list.push(p);
    pricesByVariant.set(p.variantId, list);
  }
  const regionsOf = (productId: string): SeedRegionCode[] => {
    const first = variantsByProduct.get(productId)?.[0];
    const codes = new Set((first ? pricesByVariant.get(first.id) ?? [] : []).map((p) => p.regionCode));
    return seedRegionCodes.filter((c) => codes.has(c));
  };
  const received = (variantId: string) => (stockByVariant.get(variantId) ?? []).map((s) => s.received);
  const productById = new Map(data.products.map((p) => [p.id, p]));

  const liveEverywhere = data.products.filter((p) => p.status === 'active' && regionsOf(p.id).length === all);
  const liveVariants = liveEverywhere.flatMap((p) => (variantsByProduct.get(p.id) ?? []).filter((v) => v.status === 'active'));

  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`seed fixture missing: ${what}`);
    return value;
  };

  const productSlugs = liveEverywhere
    .filter((p) => {
      const first = variantsByProduct.get(p.id)?.[0];
      const r = first ? received(first.id) : [];
      return first?.status === 'active' && r.length === all && r.every((n) => n > 0);
    })
    .slice(0, 5)
    .map((p) => p.slug);
  if (productSlugs.length < 5) throw new Error('seed fixture missing: five live products');

  let hot: { v: VariantRow; min: number } | undefined;
  for (const v of liveVariants) {
    const r = received(v.id);
    const min = r.length === all ? Math.min(...r) : 0;
    if (!hot || min > hot.min) hot = { v, min };
  }
  const hotVariant = need(hot, 'hot variant');

  const soldOut = need(
    liveVariants.find((v) => {
      const r = received(v.id);
      return r.length === all && r.every((n) => n === 0);
    }),
    'sold-out variant',
  );
  const onSale = need(
    liveVariants.find((v) => {
      const p = pricesByVariant.get(v.id) ?? [];
      return p.length === all && p.every((x) => x.compareAtAmount !== null) && received(v.id).every((n) => n > 0);
    }),
    'on-sale variant',
  );
  const archivedVariant = need(
    data.variants.find((v) => v.status === 'archived' && productById.get(v.productId)?.status === 'active'),
    'archived variant',
  );
  // At least two regions, so a test can show it in one region and 404 in another
  // while still having a second "sold here" region to compare.
  const limited = need(
    data.products.find((p) => {
      const n = regionsOf(p.id).length;
      return p.status === 'active' && n >= 2 && n < all;
    }),
    'region-limited product',
  );
  const limitedIn = regionsOf(limited.id);

  const activeByCategory = new Map<string, number>();
  for (const p of data.products) if (p.status === 'active') activeByCategory.set(p.categoryId, (activeByCategory.get(p.categoryId) ?? 0) + 1);
  let busiest: { id: string; n: number } | undefined;
  for (const [id, n] of activeByCategory) if (!busiest || n > busiest.n) busiest = { id, n };
  const busiestCategory = need(
    data.categories.find((c) => c.id === busiest?.id),
    'busiest category',
  );

  return {
    productSlugs,
    hotVariantSku: hotVariant.v.sku,
    hotVariantId: hotVariant.v.id,
    hotVariantMinReceived: hotVariant.min,
    soldOutSku: soldOut.sku,
    soldOutVariantId: soldOut.id,
    onSaleSku: onSale.sku,
    archivedVariantSku: archivedVariant.sku,
    regionLimitedSlug: limited.slug,
    regionLimitedSoldIn: limitedIn,
    regionLimitedNotSoldIn: seedRegionCodes.filter((c) => !limitedIn.includes(c)),
    draftSlug: need(data.products.find((p) => p.status === 'draft'), 'draft product').slug,
    archivedSlug: need(data.products.find((p) => p.status === 'archived'), 'archived product').slug,
    busiestCategorySlug: busiestCategory.slug,
    searchTerm: 'wireless',
  };
}

let cachedFixtures: SeedFixtures | undefined;

/**
 * The fixtures of the standard seed (`buildSeed()`), computed on first use and
 * cached, so importing this module stays cheap.
 */
export function seedFixtures(): SeedFixtures {
  cachedFixtures ??= deriveFixtures(buildSeed());
  return cachedFixtures;
}

// ---------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------

/** Tables in insertion (foreign-key) order with their rows' keys in SeedData. */
const TABLES = [
  ['regions', schema.regions],
  ['categories', schema.categories],
  ['products', schema.products],
  ['variants', schema.variants],
  ['prices', schema.prices],
  ['stock', schema.stock],
  ['media', schema.media],
] as const;

/** Postgres caps a statement at 65,535 bind parameters; stay at or below 1,000 rows regardless. */
function batchSize(columns: number): number {
  return Math.max(1, Math.min(1000, Math.floor(65_535 / columns)));
}

/** Arbitrary constant: serialises concurrent seeders (e.g. two `--if-empty` dev starts). */
const SEED_LOCK_KEY = 0x5ea5_eed;

/**
 * Loads `buildSeed()` into the database at `databaseUrl` (migrations must
 * already be applied) over a single `pg.Client`, in one transaction: either
 * the whole catalog lands or nothing does.
 *
 * With `ifEmpty`, does nothing when `regions` already has rows (and reports
 * `inserted: false`). Without it, seeding a non-empty database fails on the
 * first duplicate key and rolls back.
 *
 * `counts` are rows inserted per table (all 0 when skipped). Uses multi-row
 * INSERTs of up to 1,000 rows (~100 statements), which keeps it quick on
 * PGlite behind pglite-socket as well as on a real server.
 */
export async function seedDatabase(
  databaseUrl: string,
  opts: { ifEmpty?: boolean } = {},
): Promise<{ inserted: boolean; counts: Record<string, number> }> {
  const data = buildSeed();
  const counts: Record<string, number> = Object.fromEntries(TABLES.map(([name]) => [name, 0]));
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const db = drizzle(client);
    const inserted = await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${SEED_LOCK_KEY})`);
      if (opts.ifEmpty) {
        const existing = await tx.execute<{ present: boolean }>(sql`select exists (select 1 from regions) as present`);
        if (existing.rows[0]?.present) return false;
      }
      for (const [name, table] of TABLES) {
        const rows = data[name] as (typeof table.$inferInsert)[];
        if (rows.length === 0) continue;
        const size = batchSize(Object.keys(rows[0] ?? {}).length);
        for (let i = 0; i < rows.length; i += size) {
          try {
            const result = await tx.insert(table).values(rows.slice(i, i + size));
            counts[name] = (counts[name] ?? 0) + (result.rowCount ?? 0);
          } catch (err) {
            // Drizzle's message carries every bind parameter (thousands per
            // batch); surface Postgres' own reason instead, keep the rest as cause.
            const reason = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
            throw new Error(`seeding ${name} failed: ${reason}`, { cause: err });
          }
        }
      }
      return true;
    });
    if (!inserted) for (const k of Object.keys(counts)) counts[k] = 0;
    return { inserted, counts };
  } finally {
    await client.end();
  }
}
