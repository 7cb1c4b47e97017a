// Validates Kubernetes objects against the Kubernetes and prometheus-operator
// schemas of the npm packages kubernetes-models and
// @kubernetes-models/prometheus-operator (versions pinned in package.json),
// the way the API server's strict field validation would:
//   1. the package's JSON-schema validator (types, required fields, formats,
//      enums);
//   2. the TypeScript compiler against the package's type definitions, with
//      every object as an object literal: that reports fields the schema
//      does not have (a misspelt field), which the JSON-schema validator
//      lets through (the OpenAPI schemas do not forbid extra properties).
//
//   node validate-schemas.mjs OBJECTS.json
// OBJECTS.json: [{"source": "overlay standalone: StatefulSet/peakknn",
//                 "object": {...}}, ...]
// Prints one line per problem, naming the source; exits 1 if any.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));

// The module that defines apiVersion/kind: core and API groups come from
// kubernetes-models, monitoring.coreos.com from the prometheus-operator
// package. Anything else has no schema here, which is an error: an object
// that is not validated must not pass silently.
function modulePath(apiVersion, kind) {
  if (!apiVersion.includes("/")) return `kubernetes-models/${apiVersion}/${kind}`;
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const entries = JSON.parse(readFileSync(process.argv[2], "utf8"));
const problems = [];

// 1. JSON schema.
for (const { source, object } of entries) {
  const path = modulePath(object.apiVersion ?? "", object.kind ?? "");
  let Model;
  try {
    Model = (await import(path))[object.kind];
  } catch (e) {
    Model = undefined;
  }
  if (typeof Model !== "function") {
    problems.push(`${source}: no schema for apiVersion ${object.apiVersion} kind ${object.kind} (looked for ${path})`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (e) {
    problems.push(`${source}: ${e.message}`);
  }
}

// 2. Unknown fields: one TypeScript file, one typed constant per object,
// compiled in memory as if it lived beside this script (so the packages
// resolve from ./node_modules).
const lines = [];
const sourceOfLine = [];
entries.forEach(({ source, object }, i) => {
  const path = modulePath(object.apiVersion ?? "", object.kind ?? "");
  lines.push(`import type { I${object.kind} as T${i} } from "${path}";`);
  sourceOfLine.push(source);
});
entries.forEach(({ source, object }, i) => {
  for (const line of `export const o${i}: T${i} = ${JSON.stringify(object, null, 1)};`.split("\n")) {
    lines.push(line);
    sourceOfLine.push(source);
  }
});
const fileName = join(here, "__objects__.ts");
const text = lines.join("\n");
const options = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
};
const host = ts.createCompilerHost(options);
const readFile = host.readFile.bind(host);
const getSourceFile = host.getSourceFile.bind(host);
host.fileExists = ((exists) => (f) => f === fileName || exists(f))(host.fileExists.bind(host));
host.readFile = (f) => (f === fileName ? text : readFile(f));
host.getSourceFile = (f, version, ...rest) =>
  f === fileName ? ts.createSourceFile(f, text, version) : getSourceFile(f, version, ...rest);
const program = ts.createProgram([fileName], options, host);
for (const d of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
  if (d.file && d.file.fileName === fileName && d.start !== undefined) {
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    problems.push(`${sourceOfLine[line]}: ${message} (at: ${lines[line].trim()})`);
  } else {
    problems.push(`schema check: ${message}`);
  }
}

for (const p of problems) console.log(p);
if (problems.length > 0) process.exit(1);
console.log(`validate-schemas: ${entries.length} objects valid`);
