/**
 * How the lone-clone test chooses its suites (support/lone-clone.ts), on a small tree
 * of stand-in suites: a suite is chosen when it, or a module it imports, names the
 * folder beside the project or reads reference/ in code; a rehearsal that names the
 * folder beside is reported, so the lone-clone test fails.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loneCloneSuites } from "./support/lone-clone";
import { tempDir } from "./support/ignition";

function tree(files: Record<string, string>): string {
  const root = tempDir("lone-clone");
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  }
  return root;
}

test("chosen: suites that reach ../shared or reference/ in code, directly or through imports; rehearsals only reported", () => {
  const root = tree({
    "__tests__/support/beside.ts": 'import * as path from "node:path";\nexport const dir = path.join(__dirname, "..", "..", "..", "shared");\n',
    "__tests__/support/pinned.ts": 'export const schema = require("../../reference/schemas/x.json");\n',
    "__tests__/support/plain.ts": "// reads nothing from ../shared or reference/, it only says so\nexport const x = 1;\n",
    "lib/deep.ts": 'export { dir } from "../__tests__/support/beside";\n',
    "__tests__/a-beside.test.ts": 'import { dir } from "../lib/deep";\n',
    "__tests__/b-pinned.test.ts": 'import { schema } from "./support/pinned";\n',
    "__tests__/c-plain.test.ts": 'import { x } from "./support/plain";\n/* ../shared is not read here */\n',
    "__tests__/d-literal.test.ts": 'const f = "../shared/tools/check.sh";\n',
    "__tests__/rehearsal-x.test.ts": 'import { dir } from "./support/beside";\n',
    "__tests__/rehearsal-y.test.ts": 'import { schema } from "./support/pinned";\n',
    "__tests__/standalone-clone.test.ts": 'const beside = "../shared";\n',
  });
  const { run, rehearsals } = loneCloneSuites(root);
  expect(run).toEqual([
    { suite: "a-beside.test.ts", because: ["__tests__/support/beside.ts"] },
    { suite: "b-pinned.test.ts", because: ["__tests__/support/pinned.ts"] },
    { suite: "d-literal.test.ts", because: ["__tests__/d-literal.test.ts"] },
  ]);
  expect(rehearsals).toEqual([
    { suite: "rehearsal-x.test.ts", namesFolderBeside: ["__tests__/support/beside.ts"] },
    { suite: "rehearsal-y.test.ts", namesFolderBeside: [] },
  ]);
});
