/**
 * `npm run inventory:reconcile [-- --repair] [SKU ...]`: asks a running store
 * (PASAR_URL, default the local stack) to compare the inventory shards' sold
 * counts with order lines in Postgres, and prints the drift. With --repair,
 * excess sold units go back to available. Needs an admin token (ADMIN_TOKEN).
 */
const base = process.env.PASAR_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8787}`;
const token = process.env.ADMIN_TOKEN ?? process.env.ADMIN_BOOTSTRAP_TOKEN;
if (!token) {
  console.error('Set ADMIN_TOKEN to an admin API token (owner or catalog role).');
  process.exit(2);
}
const args = process.argv.slice(2);
const repair = args.includes('--repair');
const skus = args.filter((a) => !a.startsWith('--'));
const res = await fetch(`${base}/admin/api/inventory/reconcile`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({ repair, ...(skus.length ? { skus } : {}) }),
});
const body = (await res.json()) as { checked?: number; drift?: { sku: string; region: string; shardSold: number; orderedUnits: number; repaired: boolean }[]; error?: { message: string } };
if (!res.ok) {
  console.error(`reconcile failed (${res.status}): ${body.error?.message ?? JSON.stringify(body)}`);
  process.exit(1);
}
console.log(`checked ${body.checked} variant-regions; ${body.drift!.length} with drift`);
for (const d of body.drift!) {
  console.log(`${d.sku}\t${d.region}\tshards sold ${d.shardSold}\torders ${d.orderedUnits}\t${d.repaired ? 'repaired' : 'not repaired'}`);
}
process.exit(body.drift!.some((d) => !d.repaired) ? 3 : 0);

export {};
