/**
 * Turns a synthesized stack into the root module the rehearsal applies: the stack as
 * synthesized, every Metal object included (the real provider applies them against the
 * emulator), with one change: a Terraform Cloud or other remote backend becomes a local
 * state file, since the rehearsal must not touch the operator's real state.
 *
 * Pure: JSON in, JSON out.
 */

// The synthesized JSON is Terraform's JSON syntax: objects of objects.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface RehearsalRoot {
  readonly root: Json;
  /** The backend the stack declared, when it was not local (the rehearsal uses a local one). */
  readonly replacedBackend?: string;
}

export function rehearsalRoot(stack: Json, stateFile: string): RehearsalRoot {
  const root: Json = JSON.parse(JSON.stringify(stack));
  root.terraform ??= {};
  const backends = root.terraform.backend ?? {};
  let replacedBackend: string | undefined;
  if (root.terraform.cloud) replacedBackend = `Terraform Cloud (organization ${root.terraform.cloud.organization})`;
  else if (Object.keys(backends).some((b) => b !== "local")) replacedBackend = Object.keys(backends).join(", ");
  delete root.terraform.cloud;
  root.terraform.backend = { local: { path: stateFile } };
  return { root, replacedBackend };
}
