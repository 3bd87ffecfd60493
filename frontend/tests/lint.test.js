// The lint configuration really bans HTML-string sinks (and the project rules are active).
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const cwd = fileURLToPath(new URL('..', import.meta.url));
const eslint = new ESLint({ cwd });

/** @param {string} code */
async function ruleIds(code) {
  const [result] = await eslint.lintText(code, { filePath: 'sample.js' });
  return result.messages.map((message) => message.ruleId);
}

describe('eslint.config.js', () => {
  it.each([
    "document.body.innerHTML = '<b>x</b>';",
    'const html = document.body.outerHTML; console.log(html);',
    "document.body.insertAdjacentHTML('beforeend', '<i>x</i>');",
    "document.write('<p>x</p>');",
    "document['innerHTML'] = 'x';",
    "const range = document.createRange(); range.createContextualFragment('<p>');",
    "Object.assign(document.body, { innerHTML: '<p>' });",
  ])('rejects %s', async (code) => {
    const ids = await ruleIds(code);
    expect(ids.some((id) => id === 'no-restricted-properties' || id === 'no-restricted-syntax')).toBe(true);
  });

  it('accepts text APIs', async () => {
    const code = "const p = document.createElement('p'); p.textContent = '<b>'; p.setAttribute('title', 'x'); document.body.append(p);";
    expect(await ruleIds(code)).toEqual([]);
  });

  it('enforces the project rules', async () => {
    expect(await ruleIds('var a = 1; console.log(a);')).toContain('no-var');
    expect(await ruleIds('const a = 1; if (a == 2) console.log(a);')).toContain('eqeqeq');
    expect(await ruleIds('console.log(notDefined);')).toContain('no-undef');
    expect(await ruleIds('let b = 1; console.log(b);')).toContain('prefer-const');
    expect(await ruleIds('const unused = 1;')).toContain('no-unused-vars');
    expect(await ruleIds('export function f(_ignored, used) { return used; }')).toEqual([]);
  });
});
