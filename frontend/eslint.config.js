// ESLint flat config. Besides the project rules it bans every HTML-string sink: the DOM is
// built with createElement + textContent/setAttribute only, so no stored value can inject
// markup (the original media card's innerHTML was a stored XSS).

import js from '@eslint/js';
import globals from 'globals';

const HTML_SINK = 'Build nodes with createElement and textContent/setAttribute: HTML strings are banned (XSS).';

export default [
  {
    ignores: ['dist/', 'node_modules/', 'coverage/', 'test-results/', 'playwright-report/'],
  },
  js.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'module',
      globals: {
        ...globals.browser,
        ...globals.vitest,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      'no-unused-vars': ['warn', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-undef': 'error',
      eqeqeq: 'error',
      'no-var': 'error',
      'prefer-const': 'warn',
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: HTML_SINK },
        { property: 'outerHTML', message: HTML_SINK },
        { property: 'insertAdjacentHTML', message: HTML_SINK },
        { property: 'createContextualFragment', message: HTML_SINK },
        { property: 'setHTMLUnsafe', message: HTML_SINK },
        { object: 'document', property: 'write', message: HTML_SINK },
        { object: 'document', property: 'writeln', message: HTML_SINK },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[computed=true][property.value=/^(innerHTML|outerHTML|insertAdjacentHTML)$/]",
          message: HTML_SINK,
        },
        {
          selector: "Property[key.name=/^(innerHTML|outerHTML)$/]",
          message: HTML_SINK,
        },
      ],
    },
  },
  {
    files: ['vite.config.js', 'eslint.config.js', 'tests/**/*.js'],
    languageOptions: {
      globals: globals.node,
    },
  },
];
