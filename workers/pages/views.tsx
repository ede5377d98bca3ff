/** The storefront's pages as components: home, category listing, search results, product. */
import { MAX_LINE_QUANTITY } from '../carts/store';
import type { Category, Product, ProductSummary } from '../catalog/schemas';
import { Breadcrumbs, Pagination, Price, ProductGrid, ProductImage, availabilityLabel, type Crumb } from './components';
import { Layout, STORE_NAME } from './layout';
import type { PageContext } from './page';

/** Top-level categories (those with products in the region) with their children. */
export function categoryTree(categories: Category[]): { category: Category; children: Category[] }[] {
  const shown = categories.filter((c) => c.productCount > 0);
  return shown.filter((c) => c.parent === null).map((category) => ({ category, children: shown.filter((c) => c.parent === category.slug) }));
}

/** The home page's category overview. */
function CategoryOverview({ categories, ctx }: { categories: Category[]; ctx: PageContext }) {
  const tree = categoryTree(categories);
  if (tree.length === 0) return <p class="empty">No categories in {ctx.region.name} yet.</p>;
  return (
    <ul class="categories">
      {tree.map(({ category, children }) => (
        <li class="category">
          <h3 class="category__name">
            <a href={ctx.href(`/c/${category.slug}`)}>{category.name}</a>
          </h3>
          {children.length ? (
            <ul class="category__children">
              {children.map((child) => (
                <li>
                  <a href={ctx.href(`/c/${child.slug}`)}>{child.name}</a>
                </li>
              ))}
            </ul>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

/** Props of {@link HomePage}. */
export interface HomePageProps {
  ctx: PageContext;
  featured: ProductSummary[];
  categories: Category[];
}

/** `GET /`: categories and the newest products in the region. */
export function HomePage({ ctx, featured, categories }: HomePageProps) {
  return (
    <Layout ctx={ctx} title={`Shop online in ${ctx.region.name}`} description={`${STORE_NAME}: shop online in ${ctx.region.name}, prices in ${ctx.region.currency}.`}>
      <section class="hero" aria-labelledby="hero-title">
        <h1 id="hero-title">Shop {STORE_NAME} in {ctx.region.name}</h1>
        <p>
          Prices in {ctx.region.currency}
          {ctx.region.taxInclusive ? ', tax included' : ''}. New arrivals every day.
        </p>
      </section>
      <section aria-labelledby="categories-title">
        <h2 id="categories-title">Shop by category</h2>
        <CategoryOverview categories={categories} ctx={ctx} />
      </section>
      <section aria-labelledby="featured-title">
        <h2 id="featured-title">Featured products</h2>
        {featured.length ? <ProductGrid items={featured} ctx={ctx} label="Featured products" /> : <p class="empty">Nothing on sale in {ctx.region.name} yet.</p>}
      </section>
    </Layout>
  );
}

/** Props of {@link CategoryPage}. */
export interface CategoryPageProps {
  ctx: PageContext;
  slug: string;
  categories: Category[];
  items: ProductSummary[];
  nextCursor: string | null;
  isFirstPage: boolean;
}

/** `GET /c/:slug`: a category's products, newest first, a page at a time. */
export function CategoryPage({ ctx, slug, categories, items, nextCursor, isFirstPage }: CategoryPageProps) {
  const category = categories.find((c) => c.slug === slug);
  const name = category?.name ?? slug;
  const parent = category?.parent ? categories.find((c) => c.slug === category.parent) : undefined;
  const children = categories.filter((c) => c.parent === slug && c.productCount > 0);
  const trail: Crumb[] = [{ label: 'Home', href: ctx.href('/') }];
  if (parent) trail.push({ label: parent.name, href: ctx.href(`/c/${parent.slug}`) });
  trail.push({ label: name });
  return (
    <Layout ctx={ctx} title={isFirstPage ? name : `${name} (more)`} description={category?.description || undefined}>
      <Breadcrumbs trail={trail} />
      <header class="page-header">
        <h1>{name}</h1>
        {category?.description ? <p>{category.description}</p> : null}
      </header>
      {children.length ? (
        <nav aria-label={`Categories in ${name}`}>
          <ul class="chips">
            {children.map((child) => (
              <li>
                <a href={ctx.href(`/c/${child.slug}`)}>{child.name}</a>
              </li>
            ))}
          </ul>
        </nav>
      ) : null}
      {items.length ? (
        <ProductGrid items={items} ctx={ctx} label={`Products in ${name}`} />
      ) : (
        <p class="empty">No products in {name} in {ctx.region.name} yet.</p>
      )}
      <Pagination
        first={ctx.href(`/c/${slug}`)}
        next={nextCursor ? ctx.href(`/c/${slug}`, { cursor: nextCursor }) : null}
        isFirstPage={isFirstPage}
      />
    </Layout>
  );
}

/** Props of {@link SearchPage}. */
export interface SearchPageProps {
  ctx: PageContext;
  q: string;
  /** Null when nothing was asked yet. */
  items: ProductSummary[] | null;
  nextCursor: string | null;
  isFirstPage: boolean;
  /** Offered when there is nothing to show. */
  categories: Category[];
}

/** `GET /search?q=`: ranked results (typo tolerant), or a prompt, or an empty state. */
export function SearchPage({ ctx, q, items, nextCursor, isFirstPage, categories }: SearchPageProps) {
  const browse = categoryTree(categories);
  const Browse = () =>
    browse.length ? (
      <>
        <h2>Or browse a category</h2>
        <ul class="chips">
          {browse.map(({ category }) => (
            <li>
              <a href={ctx.href(`/c/${category.slug}`)}>{category.name}</a>
            </li>
          ))}
        </ul>
      </>
    ) : null;
  if (!q || items === null) {
    return (
      <Layout ctx={ctx} title="Search">
        <header class="page-header">
          <h1>Search</h1>
          <p>Type what you are looking for in the search box above: a product, a brand or a material.</p>
        </header>
        <Browse />
      </Layout>
    );
  }
  return (
    <Layout ctx={ctx} title={`Search: ${q}`}>
      <header class="page-header">
        <h1>
          Results for <q>{q}</q>
        </h1>
      </header>
      {items.length ? (
        <ProductGrid items={items} ctx={ctx} label={`Search results for ${q}`} />
      ) : (
        <div class="empty">
          <p>
            Nothing in {ctx.region.name} matches <q>{q}</q>. Check the spelling, or try a shorter or more general word.
          </p>
          <Browse />
        </div>
      )}
      <Pagination first={ctx.href('/search', { q })} next={nextCursor ? ctx.href('/search', { q, cursor: nextCursor }) : null} isFirstPage={isFirstPage} />
    </Layout>
  );
}

/** Props of {@link ProductPage}. */
export interface ProductPageProps {
  ctx: PageContext;
  product: Product;
  categories: Category[];
}

/** The description as paragraphs: blank lines separate them in the catalog. */
function paragraphs(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean);
}

/**
 * A flash sale of the product. The words do not depend on the time (the
 * page is cached and revalidated by ETag): the countdown is filled in by
 * /assets/sale.js, and the sale page says whether it is open yet.
 */
function SaleBanner({ ctx, sale }: { ctx: PageContext; sale: NonNullable<Product['sale']> }) {
  const starts = new Intl.DateTimeFormat(ctx.region.locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: ctx.region.timeZone }).format(new Date(sale.startsAt));
  return (
    <aside class="sale-banner" aria-label="Flash sale">
      <p>
        <strong>{sale.name}</strong>: flash sale from <time datetime={sale.startsAt} data-countdown={sale.startsAt}>{starts}</time>, limit {sale.perShopperCap} per shopper,
        through the queue only.
      </p>
      <a class="button" href={ctx.href(`/sale/${sale.id}`)}>
        Go to the sale
      </a>
      <script src="/assets/sale.js" defer></script>
    </aside>
  );
}

/** `GET /p/:slug`: images, description, variants with prices and availability in the region. */
export function ProductPage({ ctx, product, categories }: ProductPageProps) {
  const { region } = ctx;
  const category = categories.find((c) => c.slug === product.category.slug);
  const parent = category?.parent ? categories.find((c) => c.slug === category.parent) : undefined;
  const trail: Crumb[] = [{ label: 'Home', href: ctx.href('/') }];
  if (parent) trail.push({ label: parent.name, href: ctx.href(`/c/${parent.slug}`) });
  trail.push({ label: product.category.name, href: ctx.href(`/c/${product.category.slug}`) });
  trail.push({ label: product.title });

  const variants = product.variants;
  const cheapest = variants.reduce((a, b) => (b.price.amount < a.price.amount ? b : a), variants[0]!);
  const samePrice = variants.every((v) => v.price.amount === cheapest.price.amount);
  const totalUnits = variants.reduce((n, v) => n + Math.max(0, v.available), 0);
  const overall = availabilityLabel(totalUnits);
  const preselected = variants.find((v) => v.available > 0) ?? null;
  const [hero, ...more] = product.images;
  const ratio = (img: { width: number | null; height: number | null } | undefined) =>
    img?.width && img.height && img.height > img.width ? 'portrait' : 'square';

  return (
    <Layout ctx={ctx} title={product.title} description={paragraphs(product.description)[0]?.slice(0, 160)}>
      <Breadcrumbs trail={trail} />
      <article class="product">
        <div class="product__gallery">
          <ProductImage image={hero ?? null} eager ratio={ratio(hero)} label={product.title} />
          {more.length ? (
            <ul class="thumbs" aria-label="More images">
              {more.map((img) => (
                <li>
                  <ProductImage image={img} ratio={ratio(img)} label={product.title} />
                </li>
              ))}
            </ul>
          ) : null}
        </div>
        <div class="product__info">
          {product.brand ? <p class="product__brand">{product.brand}</p> : null}
          <h1 class="product__title">{product.title}</h1>
          <Price price={cheapest.price} compareAt={cheapest.compareAtPrice} region={region} prefix={samePrice ? undefined : 'From'} />
          <p class={`stock stock--${overall.tone}`}>{overall.text}</p>
          {product.sale ? <SaleBanner ctx={ctx} sale={product.sale} /> : null}
          <form class="buy" method="post" action="/cart/items">
            <fieldset class="variants">
              <legend>{variants.length > 1 ? 'Choose an option' : 'Option'}</legend>
              {variants.map((v) => {
                const stock = availabilityLabel(v.available);
                const id = `variant-${v.id}`;
                return (
                  <div class="variant">
                    <input type="radio" name="variant" id={id} value={v.id} checked={preselected?.id === v.id} disabled={v.available <= 0} required />
                    <label for={id}>
                      <span class="variant__title">{v.title}</span>
                      <Price price={v.price} compareAt={v.compareAtPrice} region={region} inline />
                      <span class={`stock stock--${stock.tone}`}>{stock.text}</span>
                    </label>
                  </div>
                );
              })}
            </fieldset>
            <div class="buy__quantity">
              <label for="buy-quantity">Quantity</label>
              <input id="buy-quantity" type="number" name="quantity" value="1" min={1} max={MAX_LINE_QUANTITY} step={1} inputmode="numeric" required />
            </div>
            <button type="submit" class="button" disabled={!preselected}>
              Add to cart
            </button>
          </form>
          <section class="product__description" aria-labelledby="description-title">
            <h2 id="description-title">Description</h2>
            {paragraphs(product.description).map((p) => (
              <p>{p}</p>
            ))}
          </section>
        </div>
      </article>
    </Layout>
  );
}
