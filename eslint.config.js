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
    // Layers import one way (protocol <- chaincode, common, sdk <- embedded-ledger, device <- services
    // <- cli): each package may import only the packages below it. Also keeps the device agent free
    // of Fabric, LevelDB and gRPC (it runs on the equipment itself).
    ...Object.entries({
        'chaincode/protocol': [
            '@m2m-fabric/*',
            'fabric-shim',
            'fabric-contract-api',
            '@hyperledger/*',
            '@grpc/*',
            'mqtt',
        ],
        'chaincode/contract': ['@m2m-fabric/*', '!@m2m-fabric/protocol', '@hyperledger/*', '@grpc/*', 'mqtt'],
        'gateway/common': [
            '@m2m-fabric/*',
            '!@m2m-fabric/protocol',
            'fabric-shim',
            'fabric-contract-api',
            '@hyperledger/*',
            '@grpc/*',
            'classic-level',
        ],
        'gateway/sdk': [
            '@m2m-fabric/*',
            '!@m2m-fabric/protocol',
            'fabric-shim',
            'fabric-contract-api',
            'mqtt',
            'aedes',
            'classic-level',
        ],
        'gateway/embedded-ledger': ['@m2m-fabric/*', '!@m2m-fabric/sdk', '!@m2m-fabric/protocol', 'mqtt', 'aedes'],
        'gateway/device': [
            '@m2m-fabric/*',
            '!@m2m-fabric/protocol',
            '!@m2m-fabric/common',
            'fabric-shim',
            'fabric-contract-api',
            '@hyperledger/*',
            '@grpc/*',
            'classic-level',
            'aedes',
            'kubo-rpc-client',
            'blockstore-fs',
        ],
        'gateway/services': [
            '@m2m-fabric/embedded-ledger',
            '@m2m-fabric/cli',
            '@m2m-fabric/chaincode',
            'fabric-shim',
            'fabric-contract-api',
        ],
    }).map(([dir, group]) => ({
        files: [`${dir}/src/**/*.ts`],
        rules: { 'no-restricted-imports': ['error', { patterns: [{ group, message: `not a layer below ${dir}` }] }] },
    })),
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
