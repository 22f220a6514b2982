// Names of apps, nodes, sites and streams: DNS-label-like, so they fit in URLs, labels and topics.
export const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
