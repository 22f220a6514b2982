// Plan preview: a manifest pasted or opened from a file, planned against the
// live cluster (POST /v1/apps?dryRun=true: nothing is stored or started), the
// answer shown as `outpost plan` prints it, and deployed for real when asked.
import { useState } from 'preact/hooks';
import type { DeployAnswer } from '../../src/contract/api.js';
import type { ApiError } from '../api.js';
import { href } from '../hooks.js';
import { Confirm, Section } from '../parts/common.js';
import { ManifestInput, sendManifest } from '../parts/manifest.js';
import { PlanView } from '../parts/apps-plan.js';
import { lacks } from '../parts/apps-actions.js';
import type { PageProps } from '../main.js';

export default function PlanPage({ me }: PageProps) {
  const [text, setText] = useState('');
  const [answer, setAnswer] = useState<DeployAnswer | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [deployed, setDeployed] = useState<DeployAnswer | null>(null);
  // a plan is a deploy that stops short: the API asks for app:deploy for both
  const lacking = lacks(me, 'app:deploy');
  const may = !lacking;
  const why = lacking ? `${lacking}, which planning and deploying need` : undefined;

  const run = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDeployed(null);
    try {
      setAnswer(await sendManifest(text, true));
    } catch (x) {
      setAnswer(null);
      setError(x as ApiError);
    }
    setBusy(false);
  };
  const deploy = async (): Promise<void> => {
    setError(null);
    try {
      setDeployed(await sendManifest(text, false));
      setAnswer(null);
    } catch (x) {
      setError(x as ApiError);
    }
  };
  const edit = (t: string): void => {
    setText(t);
    // a plan answers for the text it was made from
    setAnswer(null);
  };

  return (
    <>
      <Section title="Plan preview">
        <p class="muted">
          Paste an Outpost app manifest (YAML or JSON) or open one from a file, and see where its replicas would go, what each deploy is predicted
          to take, each demand site's route and why nodes were ruled out, before anything is started. The API takes Outpost manifests only: a
          Compose file is converted by the CLI on your machine (<code>outpost plan -f compose.yaml</code>), not here.
        </p>
        <form onSubmit={run}>
          <ManifestInput text={text} onText={edit} error={error} testid="plan-input" />
          <div class="row">
            <button class="primary" type="submit" data-testid="plan-submit" disabled={busy || !may || !text.trim()} title={why}>{busy ? 'planning ...' : 'Plan'}</button>
            {!may && <span class="muted">{why}</span>}
          </div>
        </form>
      </Section>
      {deployed && (
        <Section title="Deployed">
          <p data-testid="plan-deployed">
            <a href={href('apps', deployed.app)}>{deployed.app}</a> is at revision {deployed.revision ?? '-'}
            {deployed.changed ? `: ${deployed.plan.placements.length} replica(s) being created.` : ': nothing changed.'}
          </p>
        </Section>
      )}
      {answer && (
        <Section title="Plan" right={<Confirm label="Deploy this" question={`Deploy ${answer.plan.app} as planned? Its replicas start (or roll) now.`} act={deploy} />}>
          <div data-testid="plan-result"><PlanView answer={answer} /></div>
        </Section>
      )}
    </>
  );
}
