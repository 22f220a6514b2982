// The dashboard's shell: sign-in with an API token, the navigation, the live
// connection's state, and the page the URL's hash names. Pages other than the
// fleet are loaded when first opened.
import './style.css';
import { render, type ComponentType } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { WhoAmI } from '../src/contract/api.js';
import { api, ApiError, token } from './api.js';
import { live, type LiveState } from './live.js';
import { href, useRoute } from './hooks.js';
import { ErrorBox } from './parts/common.js';
import Fleet from './pages/fleet.js';

export interface PageProps {
  /** the hash route after the page's own name: `#/apps/shop-a/logs` gives ['shop-a', 'logs'] */
  route: string[];
  me: WhoAmI;
}

type PageModule = { default: ComponentType<PageProps> };
const PAGES: Record<string, { title: string; load?: () => Promise<PageModule> }> = {
  fleet: { title: 'Fleet' },
  apps: { title: 'Apps', load: () => import('./pages/apps.js') },
  deploys: { title: 'Deploys', load: () => import('./pages/deploys.js') },
  streams: { title: 'Streams', load: () => import('./pages/streams.js') },
  events: { title: 'Events', load: () => import('./pages/events.js') },
  plan: { title: 'Plan', load: () => import('./pages/plan.js') },
};

function Lazy({ load, ...props }: PageProps & { load: () => Promise<PageModule> }) {
  const [mod, setMod] = useState<PageModule | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  useEffect(() => {
    setMod(null);
    load().then(setMod, (e: Error) => setErr(new ApiError(0, 'E_LOAD', `this page could not be loaded: ${e.message}`)));
  }, [load]);
  if (err) return <ErrorBox error={err} />;
  if (!mod) return <p class="muted">loading ...</p>;
  const Page = mod.default;
  return <Page {...props} />;
}

function SignIn({ onIn, reason }: { onIn: (me: WhoAmI) => void; reason: string | null }) {
  const [value, setValue] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    token.set(value.trim());
    try {
      onIn(await api<WhoAmI>('/v1/whoami'));
    } catch (x) {
      token.clear();
      setErr(x as ApiError);
    }
  };
  return (
    <form class="signin card" onSubmit={submit}>
      <h1>Outpost</h1>
      <p>Sign in with an API token: the admin token (<code>admin.token</code> in the control plane's data dir) or one from <code>outpost token create --role viewer</code>.</p>
      {reason && <p class="muted">{reason}</p>}
      <label>API token <input name="token" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} required /></label>
      <button class="primary" type="submit">Sign in</button>
      <ErrorBox error={err} />
    </form>
  );
}

function LiveDot() {
  const [s, set] = useState<LiveState>('connecting');
  useEffect(() => live.onState(set), []);
  const title = s === 'off' ? 'this token may not read the event log (event:read): pages reload every 3 s' : 'the event stream';
  return <span class={`live ${s}`} data-live={s} title={title}>{s === 'off' ? 'polling' : s}</span>;
}

function App() {
  const [me, setMe] = useState<WhoAmI | null>(null);
  const [checking, setChecking] = useState(!!token.get());
  const [reason, setReason] = useState<string | null>(null);
  const route = useRoute();
  // a refused token while signing in is the sign-in form's to say, not a sign-out
  const signedIn = useRef(false);
  signedIn.current = me !== null;
  useEffect(() => {
    if (token.get()) api<WhoAmI>('/v1/whoami').then(setMe, () => token.clear()).finally(() => setChecking(false));
    const out = (e: Event): void => {
      if (!signedIn.current) return;
      token.clear();
      live.stop();
      setMe(null);
      setReason(`Signed out: ${(e as CustomEvent<string>).detail}`);
    };
    window.addEventListener('outpost:signed-out', out);
    return () => window.removeEventListener('outpost:signed-out', out);
  }, []);
  useEffect(() => {
    if (me) live.start(me.capabilities.includes('event:read'));
  }, [me]);
  if (checking) return <p class="boot">checking the token ...</p>;
  if (!me) return <SignIn onIn={setMe} reason={reason} />;
  const name = PAGES[route[0] ?? ''] ? route[0]! : 'fleet';
  const page = PAGES[name]!;
  const props: PageProps = { route: route.slice(1), me };
  return (
    <div class="shell">
      <nav>
        <b class="brand">Outpost</b>
        {Object.entries(PAGES).map(([k, p]) => <a href={href(k)} class={k === name ? 'here' : ''}>{p.title}</a>)}
        <span class="spacer" />
        <LiveDot />
        <span class="muted" title={`role ${me.role}`}>{me.name} ({me.role})</span>
        <button onClick={() => { token.clear(); live.stop(); setMe(null); setReason(null); }}>Sign out</button>
      </nav>
      <main data-page={name}>
        {page.load ? <Lazy key={name} load={page.load} {...props} /> : <Fleet {...props} />}
      </main>
    </div>
  );
}

const root = document.getElementById('root')!;
root.textContent = ''; // the boot message
render(<App />, root);
