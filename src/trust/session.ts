// TLS session resumption for an agent's connections: the session of the last
// connection is offered on the next, so a reconnect (a dropped link, a
// control plane restarted with its ticket keys) skips the certificate
// signature and verification. A session belongs to the certificate it was
// made with: a new certificate starts a new one.
import net from 'node:net';
import tls from 'node:tls';

export class SessionCache {
  private session: Buffer | null = null;
  private forCert: string | null = null;

  /** A `createConnection` for ws (the same as its own, plus the session offered and the next one kept). */
  connector(cert: string): typeof net.createConnection {
    if (cert !== this.forCert) { this.session = null; this.forCert = cert; }
    const connect = (opts: tls.ConnectionOptions & { host?: string; path?: string }) => {
      const s = tls.connect({
        ...opts, path: undefined, session: this.session ?? undefined,
        servername: opts.servername ?? (opts.host && !net.isIP(opts.host) ? opts.host : ''),
      });
      s.on('session', (sess: Buffer) => { if (this.forCert === cert) this.session = sess; });
      return s;
    };
    // ws calls it with the options of tls.connect; its type is net's
    return connect as unknown as typeof net.createConnection;
  }
}
