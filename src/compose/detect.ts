// Whether a file's text is a Compose file (a top-level `services:`) rather
// than an Outpost manifest: told apart without a YAML parser, so deploying a
// manifest loads none in the CLI.
export function isComposeText(text: string): boolean {
  return /^services[ \t]*:/m.test(text);
}
