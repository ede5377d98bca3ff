/** Building blocks shared by the pages: prices, images, product cards, breadcrumbs, pagination, form fields. */
import type { Region } from '../../db/regions';
import type { Image, ProductSummary } from '../catalog/schemas';
import { formatMoney, type Money } from '../lib/money';
import { LOW_STOCK_THRESHOLD, type PageContext } from './page';

/**
 * A price in the region's currency and decimals, with the compare-at price
 * struck through when it is higher (a sale). The struck price is announced
 * as "was", since strike-through alone is invisible to screen readers.
 */
export function Price({
  price,
  compareAt,
  region,
  inline = false,
  prefix,
}: {
  price: Money;
  compareAt?: Money | null;
  region: Region;
  /** Renders a `<span>` (inside a label) instead of a paragraph. */
  inline?: boolean;
  /** Words before the amount, e.g. "From". */
  prefix?: string;
}) {
  const onSale = compareAt != null && compareAt.amount > price.amount;
  const className = `price${onSale ? ' price--sale' : ''}`;
  const content = (
    <>
      {prefix ? `${prefix} ` : null}
      {onSale ? <span class="visually-hidden">Now </span> : null}
      <span class="price__now">{formatMoney(price, region)}</span>
      {onSale ? (
        <>
          {' '}
          <s class="price__was">
            <span class="visually-hidden">, was </span>
            {formatMoney(compareAt, region)}
          </s>
        </>
      ) : null}
    </>
  );
  return inline ? <span class={className}>{content}</span> : <p class={className}>{content}</p>;
}

/** Availability wording for `units` in the region. */
export function availabilityLabel(units: number): { text: string; tone: 'ok' | 'low' | 'none' } {
  if (units <= 0) return { text: 'Sold out', tone: 'none' };
  if (units <= LOW_STOCK_THRESHOLD) return { text: `Only ${units} left`, tone: 'low' };
  return { text: 'In stock', tone: 'ok' };
}

/**
 * A product image inside a frame of fixed aspect ratio, so nothing moves
 * while it loads. Without an image the frame stays as a styled placeholder.
 * `eager` is for the one image likely in the first viewport; the rest wait
 * until scrolled near.
 */
export function ProductImage({ image, eager = false, ratio = 'square', label }: { image: Image | null; eager?: boolean; ratio?: 'square' | 'portrait'; label: string }) {
  if (!image) {
    return (
<div class={`media media--${ratio} media--empty`} role="img" aria-label={`${label}: no image yet`} />
    );
  }
  return (
    <div class={`media media--${ratio}`}>
      <img
        src={image.url}
        alt={image.alt || label}
        width={image.width ?? 1200}
        height={image.height ?? 1200}
        loading={eager ? 'eager' : 'lazy'}
        decoding="async"
      />
    </div>
  );
}

/**
 * A product card. The title is the one link; its hit area is stretched over
 * the card in CSS, so the whole card is clickable but read as one link name.
 */
export function ProductCard({ item, ctx }: { item: ProductSummary; ctx: PageContext }) {
  return (
    <li class="card">
      <article class={item.available ? 'card__body' : 'card__body card__body--soldout'}>
        <ProductImage image={item.image} label={item.title} />
        <h3 class="card__title">
          <a href={ctx.href(`/p/${item.slug}`)}>{item.title}</a>
        </h3>
        {item.brand ? <p class="card__brand">{item.brand}</p> : null}
        <Price price={item.price} compareAt={item.compareAtPrice} region={ctx.region} />
        {item.available ? null : <p class="badge badge--soldout">Sold out</p>}
      </article>
    </li>
  );
}

/**
 * A responsive grid of product cards. Card images are all lazy: browsers
 * still fetch the ones in the first viewport at once, and a listing's first
 * row is often below the fold (the home page's is).
 */
export function ProductGrid({ items, ctx, label }: { items: ProductSummary[]; ctx: PageContext; label: string }) {
  return (
    <ul class="grid" aria-label={label}>
      {items.map((item) => (
        <ProductCard item={item} ctx={ctx} />
      ))}
    </ul>
  );
}

/** One step of a breadcrumb trail; the last one is the current page and has no link. */
export interface Crumb {
  label: string;
  href?: string;
}

/** Breadcrumb navigation. */
export function Breadcrumbs({ trail }: { trail: Crumb[] }) {
  return (
    <nav class="breadcrumbs" aria-label="Breadcrumb">
      <ol>
        {trail.map((crumb, i) =>
          i === trail.length - 1 || !crumb.href ? (
            <li aria-current={i === trail.length - 1 ? 'page' : undefined}>{crumb.label}</li>
          ) : (
            <li>
              <a href={crumb.href}>{crumb.label}</a>
            </li>
          ),
        )}
      </ol>
    </nav>
  );
}

/**
 * Forward-only pagination: cursors are opaque, so there is "Next page" and a
 * way back to the first page, not numbered pages.
 */
export function Pagination({ first, next, isFirstPage }: { first: string; next: string | null; isFirstPage: boolean }) {
  if (!next && isFirstPage) return null;
  return (
    <nav class="pagination" aria-label="Pagination">
      {isFirstPage ? null : (
        <a class="button-secondary" href={first}>
          First page
        </a>
      )}
      {next ? (
        <a class="button" href={next} rel="next">
          Next page
        </a>
      ) : null}
    </nav>
  );
}

/**
 * A labelled `<input>` with an optional hint and error message, both tied to
 * the input through `aria-describedby` (as `<id>-hint` and `<id>-error`) so
 * they are announced with it; an error also marks it `aria-invalid`.
 *
 * Rendered as `div.field` (plus `field--invalid` with an error), holding the
 * label, then `p.field__hint`, the input, and `p.field__error`. A password
 * field never echoes `value` back into the page.
 */
export function FormField(props: {
  /** The input's id; the label, hint and error ids derive from it. */
  id: string;
  name: string;
  label: string;
  /** Defaults to `text`. */
  type?: 'text' | 'email' | 'password';
  /** What was typed before (ignored for `password`). */
  value?: string;
  /** The message shown under the input; its presence marks the field invalid. */
  error?: string;
  /** Guidance shown between the label and the input. */
  hint?: string;
  autocomplete: string;
  required?: boolean;
  minlength?: number;
  maxlength?: number;
  autofocus?: boolean;
}) {
  const type = props.type ?? 'text';
  const hintId = props.hint ? `${props.id}-hint` : undefined;
  const errorId = props.error ? `${props.id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ') || undefined;
  return (
    <div class={props.error ? 'field field--invalid' : 'field'}>
      <label for={props.id}>{props.label}</label>
      {props.hint ? (
        <p class="field__hint" id={hintId}>
          {props.hint}
        </p>
      ) : null}
      <input
        id={props.id}
        name={props.name}
        type={type}
        value={type === 'password' ? undefined : props.value}
        autocomplete={props.autocomplete}
        minlength={props.minlength}
        maxlength={props.maxlength}
        required={props.required}
        autofocus={props.autofocus}
        aria-invalid={props.error ? 'true' : undefined}
        aria-describedby={describedBy}
      />
      {props.error ? (
        <p class="field__error" id={errorId}>
          {props.error}
        </p>
      ) : null}
    </div>
  );
}

/** An empty cart or list: what is (not) there, and the way back to shopping. */
export function EmptyState({ ctx, message }: { ctx: PageContext; message: string }) {
  return (
    <div class="empty">
      <p>{message}</p>
      <p>
        <a class="button" href={ctx.href('/')}>
          Continue shopping
        </a>
      </p>
    </div>
  );
}
