// ESLint flat config: typescript-eslint's recommended type-aware rules for lib/, test/ and bench/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'build-*/', 'node_modules/', '.device/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'test/*.cjs', 'csrc/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { process: 'readonly', console: 'readonly', require: 'readonly', module: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // prettier wraps code at 120 columns but not strings or comments: this holds every line to it
      'max-len': ['error', { code: 120, tabWidth: 2 }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // chai's property assertions (expect(x).to.be.true) read as unused expressions
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
  {
    files: ['**/*.cjs', '**/*.mjs', '*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // mocha loads reporters with require(), so this one is CommonJS
    files: ['test/reporter.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
