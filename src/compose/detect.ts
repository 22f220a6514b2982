// Whether a file's text is a Compose file (a top-level `services:`) rather
// than an Outpost manifest: told apart without a YAML parser, so deploying a
// manifest loads none in the CLI. A Compose file in JSON is JSON-parsed.
export function isComposeText(text: string): boolean {
  if (text.trimStart().startsWith('{')) {
    try {
      const doc = JSON.parse(text) as unknown;
      return !!doc && typeof doc === 'object' && Object.hasOwn(doc, 'services');
    } catch {
      return false;
    }
  }
  return /^services[ \t]*:/m.test(text);
}
