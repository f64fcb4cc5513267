import { escapeTerraformTemplate } from "../ignition/terraform-escape";
import { parseTerraformTemplate } from "../lib/terraform-template";

test("parsing what the escaper wrote gives the original text back as one literal", () => {
  for (const text of ['echo "${HOME}" %{x} $$ {}', "plain", 'a ${b} c', "${", "%{ if }"]) {
    expect(parseTerraformTemplate(escapeTerraformTemplate(text))).toEqual([{ literal: text }]);
  }
});

test("interpolations and directives are split out; braces inside quoted strings do not end them", () => {
  expect(parseTerraformTemplate('x ${join("}", [a.b])} y %{ if c }z')).toEqual([
    { literal: "x " },
    { expression: 'join("}", [a.b])', kind: "interpolation" },
    { literal: " y " },
    { expression: " if c ", kind: "directive" },
    { literal: "z" },
  ]);
  expect(parseTerraformTemplate("${f({a = 1})}")).toEqual([{ expression: "f({a = 1})", kind: "interpolation" }]);
});

test("an unterminated sequence is an error, not silently text", () => {
  expect(() => parseTerraformTemplate("a ${b")).toThrow("unterminated Terraform expression at 2");
  expect(() => parseTerraformTemplate('a ${"}"')).toThrow("unterminated");
});
