// A site's probe address: a TCP listener that accepts and closes. Agents time
// the TCP handshake with it. Usage: node probe-server.mjs HOST PORT
import net from 'node:net';
const [host, port] = process.argv.slice(2);
net.createServer((c) => c.destroy()).listen(Number(port), host);
