/**
 * Metal rejects user data in a format it does not recognize with HTTP 422 (facts.md). The
 * formats the emulator recognizes: Ignition (a JSON object, what Flatcar boots from),
 * cloud-init's `#`-headed formats (`#cloud-config`, `#!` scripts, `#include`, iPXE's
 * `#!ipxe`) and MIME multi-part. The exact list Metal accepts is not documented.
 */
export function userDataProblem(text: string): string | undefined {
  const start = text.trimStart();
  if (start.startsWith("#")) return undefined;
  if (/^Content-Type:/i.test(start)) return undefined;
  if (start.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return undefined;
    } catch {
      return "User data is not valid JSON, and JSON user data must be an Ignition config";
    }
  }
  return "User data is in an unrecognized format (expected Ignition JSON, #cloud-config, a #! script or MIME multi-part)";
}
