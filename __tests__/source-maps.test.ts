/**
 * Jest's stack traces point at the TypeScript source lines (tsconfig sourceMap, used by
 * ts-jest). Without maps they pointed at lines of the transpiled output instead.
 * The Error below is made on line 16 of this file: keep it there.
 */
import * as fs from "node:fs";
import * as path from "node:path";

// Imports and type-only code shift transpiled lines: both are above the Error on purpose.
type Where = { file: string; line: number };
const here: Where = { file: path.basename(__filename), line: 0 };
void fs;

test("a stack trace names this file and the source line the Error was made on", () => {
  here.line = 16;
  const stack = new Error("where am I").stack ?? "";
  expect(stack).toContain(`${here.file}:${here.line}:`);
});
