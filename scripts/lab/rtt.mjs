// The round trip to HOST:PORT as TCP sees it, from wherever this runs (a
// node's namespace): the median of N connects, answered or refused (a port
// nobody listens on answers the SYN with a reset, one round trip too).
// Usage: node rtt.mjs HOST PORT N  ->  median ms
import net from 'node:net';
const [host, port, n] = process.argv.slice(2);
const once = () => new Promise((resolve) => {
  const t0 = performance.now();
  const s = net.connect(Number(port), host);
  const done = () => { s.destroy(); resolve(performance.now() - t0); };
  s.once('connect', done);
  s.once('error', done);
});
const xs = [];
for (let i = 0; i < Number(n); i++) xs.push(await once());
xs.sort((a, b) => a - b);
console.log(Math.round(xs[Math.floor(xs.length / 2)] * 100) / 100);
