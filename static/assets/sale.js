// Flash-sale pages: a countdown against the server's clock, and the queue
// followed over a WebSocket. The pages work without this script (they
// reload themselves); with it they update in place and reload only when
// the shopper's state changes (admitted, sold out, back in stock, ended).
(() => {
  'use strict';
  const pad = (n) => String(n).padStart(2, '0');

  // Countdowns: the page's server time corrects a device clock that is off.
  for (const el of document.querySelectorAll('[data-countdown]')) {
    const target = Date.parse(el.dataset.countdown);
    const skew = el.dataset.serverTime ? Date.parse(el.dataset.serverTime) - Date.now() : 0;
    const label = el.textContent;
    const tick = () => {
      const left = Math.round((target - (Date.now() + skew)) / 1000);
      if (left <= 0) {
        el.textContent = `${label} (now)`;
        // On the sale page the queue opens now.
        if (el.dataset.serverTime) location.reload();
        return;
      }
      const h = Math.floor(left / 3600);
      const m = Math.floor((left % 3600) / 60);
      el.textContent = `${label} (in ${h ? `${h}:` : ''}${pad(m)}:${pad(left % 60)})`;
      setTimeout(tick, 1000 - ((Date.now() + skew) % 1000));
    };
    tick();
  }

  // The queue: position and estimate live, a reload when the state changes.
  const waiting = document.querySelector('[data-queue]');
  if (waiting && 'WebSocket' in window) {
    const position = Number(waiting.dataset.position);
    const soldOutNow = waiting.classList.contains('sale__soldout');
    const field = (name) => waiting.querySelector(`[data-field="${name}"]`);
    const url = new URL(`/api/sales/${encodeURIComponent(waiting.dataset.queue)}/queue/ws`, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const region = new URLSearchParams(location.search).get('region');
    if (region) url.searchParams.set('region', region);
    const open = () => {
      const ws = new WebSocket(url);
      ws.onmessage = (event) => {
        const m = JSON.parse(event.data);
        const admitted = m.type === 'status' ? m.state === 'admitted' : position <= m.admittedThrough;
        if (admitted || m.ended || m.state === 'ended' || m.soldOut !== soldOutNow) {
          ws.close();
          location.reload();
          return;
        }
        const ahead = Math.max(0, position - m.admittedThrough - 1);
        if (field('ahead')) field('ahead').textContent = String(ahead);
        if (field('wait')) field('wait').textContent = String(Math.ceil((ahead + 1) / m.ratePerSecond));
      };
      // A dropped connection comes back; the page's own reload is the fallback.
      ws.onclose = (event) => {
        if (event.code !== 1000) setTimeout(open, 2000);
      };
    };
    open();
  }
})();
