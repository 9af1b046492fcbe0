// Main-thread time per second in Chromium with 500 subscribed keys ticking, for the first hook
// (use-price-websocket.js, one state object copied and the whole component re-rendered per tick) and the new
// ones (price-hooks.js): the guide's page ported by changing its import, and a board with a row per key on
// usePrice; and, for scale, the socket alone with nothing rendered. Chromium's own accounting (DevTools Performance.getMetrics: TaskDuration, ScriptDuration, ...)
// over a window of steady ticking, production React build.
//
//   dotnet build PriceDaemon.sln -c Release && (cd clients/js && npm ci)
//   node clients/js/bench/measure-hooks.mjs [--seconds 10] [--keys 500] [--rounds 2]
//
// It starts the daemon (PriceDaemon/bin/Release) with 500 synthetic instruments ticking every 1-2 s each (the
// default simulated rate; about 330 prices a second over all keys, throttle 250 ms), drives Debian's Chromium
// with the playwright-core that Microsoft.Playwright's NuGet package carries (PriceDaemon.Tests/bin/Release),
// and prints one line per hook and round plus a Markdown table of the medians.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
const seconds = Number(args.seconds ?? 10);
const keyCount = Number(args.keys ?? 500);
const rounds = Number(args.rounds ?? 2);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const { chromium } = await import(join(root, 'PriceDaemon.Tests/bin/Release/net10.0/.playwright/package/index.mjs'));

const work = mkdtempSync(join(tmpdir(), 'pricedaemon-measure-'));
const bundleFile = join(work, 'app.js');
await build({
  entryPoints: [join(root, 'clients/js/test-app/app.jsx')],
  bundle: true, format: 'iife', jsx: 'automatic', target: 'es2022', minify: true,
  define: { 'process.env.NODE_ENV': '"production"' }, outfile: bundleFile, logLevel: 'warning',
});
const bundle = readFileSync(bundleFile, 'utf8');
const html = readFileSync(join(root, 'clients/js/test-app/index.html'), 'utf8');

const daemon = spawn('dotnet', [join(root, 'PriceDaemon/bin/Release/net10.0/PriceDaemon.dll'),
  '--urls', 'http://127.0.0.1:0', `--Feed:Simulated:SyntheticInstruments=${keyCount}`,
  `--Limits:MaxSubscriptionsPerConnection=${keyCount + 100}`, `--Limits:MaxSubscriptionsPerUser=${keyCount + 100}`,
  '--Limits:SubscriptionChangesPerWindow=1000', `--Storage:Path=${join(work, 'prices.db')}`, '--Serilog:MinimumLevel:Default=Warning'],
{ cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
const base = await new Promise((resolve, reject) => {
  let seen = '';
  const onData = (chunk) => {
    seen += chunk;
    const match = /Now listening on: (http\S+)/.exec(seen);
    if (match) resolve(match[1].replace(/\/?$/, '/'));
  };
  daemon.stdout.on('data', onData);
  daemon.stderr.on('data', onData);
  daemon.on('exit', (code) => reject(new Error(`the daemon exited (${code}): ${seen}`)));
});

const keys = Array.from({ length: keyCount }, (_, i) => `NSE_EQ|SYN${String(i + 1).padStart(7, '0')}`);
const hooks = {
  'no React: the socket alone, subscribed to every key': null,
  'old usePriceWebSocket (use-price-websocket.js)': { component: 'OldGuidePage', props: { id: 'page', keys } },
  'new usePriceWebSocket (same page, import changed)': { component: 'NewGuidePage', props: { id: 'page', keys } },
  'new usePrice, one row component per key': { component: 'QuoteBoard', props: { keys } },
};

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-features=LocalNetworkAccessChecks'],
});
const results = {};
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [name, item] of Object.entries(hooks)) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.route(`${base}react-test/**`, (route) => route.request().url().endsWith('/app.js')
        ? route.fulfill({ contentType: 'text/javascript', body: bundle })
        : route.fulfill({ contentType: 'text/html', body: html }));
      await page.goto(`${base}react-test/index.html`);
      await page.waitForFunction(() => window.testApp?.socket.status === 'connected', null, { timeout: 30_000 });
      await page.evaluate(([it, all]) => (it ? window.testApp.mount([it]) : window.testApp.socket.subscribe(all)), [item, keys]);
      // Warm up: every key has its price and the page has ticked a while.
      await page.waitForFunction((n) => Object.keys(window.testApp.state.ticks).length >= n, keyCount, { timeout: 60_000 });
      await page.waitForTimeout(2000);
      const cdp = await context.newCDPSession(page);
      await cdp.send('Performance.enable');
      const metric = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
      const ticks0 = await page.evaluate(() => window.testApp.state.tickCount);
      const m0 = await metric();
      await page.waitForTimeout(seconds * 1000);
      const m1 = await metric();
      const ticks1 = await page.evaluate(() => window.testApp.state.tickCount);
      const elapsed = m1.Timestamp - m0.Timestamp;
      const per = (k) => ((m1[k] - m0[k]) / elapsed) * 1000; // ms per second
      const row = {
        task: per('TaskDuration'), script: per('ScriptDuration'), layout: per('LayoutDuration'),
        ticks: (ticks1 - ticks0) / elapsed,
      };
      (results[name] ??= []).push(row);
      console.log(`round ${round} ${name}: main thread ${row.task.toFixed(1)} ms/s (script ${row.script.toFixed(1)}, layout ${row.layout.toFixed(1)}), ${row.ticks.toFixed(0)} prices/s`);
      await context.close();
    }
  }
} finally {
  await browser.close();
  daemon.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

const median = (values) => values.sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
console.log(`\n| hook (${keyCount} keys, ${seconds} s windows, median of ${rounds}) | main thread ms/s | script | layout | prices/s |`);
console.log('|---|---:|---:|---:|---:|');
for (const [name, rows] of Object.entries(results)) {
  const m = (k) => median(rows.map((r) => r[k])).toFixed(1);
  console.log(`| ${name} | ${m('task')} | ${m('script')} | ${m('layout')} | ${median(rows.map((r) => r.ticks)).toFixed(0)} |`);
}
