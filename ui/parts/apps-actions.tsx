// What may be done to an app from its page: deploy (an editor prefilled with
// the spec that runs, planned first if wanted), roll back (POST .../undo) and
// remove. Each asks first. A token whose role lacks the capability sees the
// button disabled, saying why (the roles: src/core/capabilities.ts); a scope
// that does not cover the app is refused by the API, and the refusal is shown.
import { useEffect, useState } from 'preact/hooks';
import type { AppDetail, DeployAnswer, RemoveAnswer, UndoAnswer, WhoAmI } from '../../src/contract/api.js';
import { api, ApiError, enc } from '../api.js';
import { href } from '../hooks.js';
import { Confirm } from './common.js';
import { ManifestInput, sendManifest, specYaml } from './manifest.js';
import { PlanView } from './apps-plan.js';
import { runningRevision, undoTarget } from './apps-revision.js';

/** Why this token may not use a capability, or null when it may. */
export const lacks = (me: WhoAmI, cap: string): string | null =>
  me.capabilities.includes(cap) ? null : `your token (${me.name}, role ${me.role}) lacks ${cap}`;

/** A button that cannot be used now, with the reason on hover and for screen readers. */
const Off = ({ label, why }: { label: string; why: string }) => <button disabled title={why} aria-label={`${label}: ${why}`}>{label}</button>;

export function Actions({ app, me, onDeploy, editing, say }: { app: AppDetail; me: WhoAmI; onDeploy: () => void; editing: boolean; say: (s: string) => void }) {
  const deployWhy = lacks(me, 'app:deploy');
  const removeWhy = lacks(me, 'app:remove');
  const back = undoTarget(app);
  const undo = async (): Promise<void> => {
    const r = await api<UndoAnswer>(`/v1/apps/${enc(app.name)}/undo`, { method: 'POST' });
    say(r.changed ? `Rolled back: revision ${r.revision} runs revision ${back?.revision ?? '?'}'s spec.` : 'Nothing to roll back: the replicas already run that spec.');
  };
  const remove = async (): Promise<void> => {
    await api<RemoveAnswer>(`/v1/apps/${enc(app.name)}`, { method: 'DELETE' });
    location.hash = href('apps');
  };
  return (
    <div class="row actions">
      <span data-testid="deploy-button">
        {deployWhy ? <Off label="Deploy" why={deployWhy} /> : <button onClick={onDeploy} disabled={editing}>Deploy</button>}
      </span>
      <span data-testid="rollback-button">
        {deployWhy || !back ? <Off label="Roll back" why={deployWhy ?? `${app.name} has no earlier good revision to go back to`} />
          : <Confirm label="Roll back" question={`Deploy revision ${back.revision}'s spec again, as a new revision? ${app.name}'s replicas roll to it one step at a time.`} act={undo} />}
      </span>
      <span data-testid="remove-button">
        {removeWhy ? <Off label="Remove" why={removeWhy} />
          : <Confirm danger label="Remove" question={`Remove ${app.name} and its ${app.replicas.length} replica(s)? Its named volumes stay on the nodes.`} act={remove} />}
      </span>
    </div>
  );
}

/** The deploy editor: the running spec as YAML, edited, planned and deployed. */
export function DeployEditor({ app, onClose, say }: { app: AppDetail; onClose: () => void; say: (s: string) => void }) {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [plan, setPlan] = useState<DeployAnswer | null>(null);
  const [busy, setBusy] = useState(false);
  // the spec when the editor opened: a reload while editing must not replace the text
  useEffect(() => {
    specYaml(app.spec).then(setText, (e: Error) => { setText(''); setError(new ApiError(0, 'E_LOAD', `the YAML library could not be loaded: ${e.message}`)); });
  }, []);
  const edit = (t: string): void => {
    setText(t);
    setPlan(null);
  };
  const preview = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      setPlan(await sendManifest(text ?? '', true));
    } catch (e) {
      setError(e as ApiError);
    }
    setBusy(false);
  };
  const deploy = async (): Promise<void> => {
    setError(null);
    try {
      const r = await sendManifest(text ?? '', false);
      say(r.changed ? `Deployed ${r.app}: revision ${r.revision ?? '-'}.` : `Deployed ${r.app}: nothing changed.`);
      onClose();
    } catch (e) {
      // shown in the editor, at the line the error's path names
      setError(e as ApiError);
    }
  };
  return (
    <section class="card" data-testid="deploy-editor">
      <header><h2>Deploy {app.name}</h2><button onClick={onClose}>Close</button></header>
      <p class="muted">
        The spec the app is at (revision {runningRevision(app) ?? app.revision ?? '-'}'s), as YAML: empty lists and maps left out, every other default filled in. A change to what
        the replicas run is a new revision, rolled out a step at a time and rolled back if a new replica fails; a change of replicas or
        placement only starts or stops replicas.
      </p>
      {text === null ? <p class="muted">loading the spec ...</p> : <ManifestInput text={text} onText={edit} error={error} testid="deploy-input" />}
      <div class="row dialogs-right">
        <button onClick={preview} disabled={busy || text === null} data-testid="deploy-plan">{busy ? 'planning ...' : 'Plan first'}</button>
        <span data-testid="deploy-submit"><Confirm label="Deploy" question="Deploy this manifest now? A changed spec rolls out at once." act={deploy} /></span>
      </div>
      {plan && <PlanView answer={plan} />}
    </section>
  );
}
