// Lint rules in the style of hyperledger/fabric-gateway's Node client: typescript-eslint's
// type-checked recommended set, formatting left to prettier.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    { ignores: ['**/node_modules/', '**/dist/', 'build/', '.data/', 'bench/results/', 'eslint.config.js'] },
    js.configs.recommended,
    ...tseslint.configs.recommendedTypeChecked,
    {
        languageOptions: {
            parserOptions: {
                projectService: true,
                tsconfigRootDir: import.meta.dirname,
            },
        },
        rules: {
            '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
            '@typescript-eslint/explicit-function-return-type': ['error', { allowExpressions: true }],
            '@typescript-eslint/require-await': 'off',
            eqeqeq: ['error', 'always'],
            'no-console': 'off',
        },
    },
    {
        // The console's page script runs in the browser, as a plain ES module.
        files: ['gateway/console/web/**/*.js'],
        ...tseslint.configs.disableTypeChecked,
        languageOptions: {
            parserOptions: { projectService: false, project: null },
            sourceType: 'module',
            globals: {
                window: 'readonly',
                document: 'readonly',
                location: 'readonly',
                history: 'readonly',
                fetch: 'readonly',
                EventSource: 'readonly',
                URLSearchParams: 'readonly',
                FormData: 'readonly',
                requestAnimationFrame: 'readonly',
                globalThis: 'readonly',
            },
        },
        rules: {
            ...tseslint.configs.disableTypeChecked.rules,
            '@typescript-eslint/explicit-function-return-type': 'off',
        },
    },
    {
        // Plain JavaScript helpers are not part of a TypeScript project.
        files: ['**/*.mjs', '**/*.cjs'],
        ...tseslint.configs.disableTypeChecked,
        languageOptions: {
            parserOptions: { projectService: false, project: null },
            globals: { process: 'readonly', console: 'readonly' },
        },
        rules: {
            ...tseslint.configs.disableTypeChecked.rules,
            '@typescript-eslint/explicit-function-return-type': 'off',
        },
    },
);
