// Example parameters. Override per environment, e.g.
//   az deployment group create -g <rg> -f infra-bicep/main.bicep -p infra-bicep/main.bicepparam
// Values read from the environment let the two-phase first deployment (docs/deploy.md) use one file.
using './main.bicep'

param namePrefix = readEnvironmentVariable('SPLITFN_NAME_PREFIX', 'splitfn')

param hospitals = [
  'hospital-a'
  'hospital-b'
  'hospital-c'
]

// Filled in during onboarding: the object id of each hospital agent's service principal.
param hospitalPrincipals = []

param exchangeRetentionDays = 14

param gpuProfile = 'T4'

param hostingMode = 'functionapp'

param deployServer = bool(readEnvironmentVariable('SPLITFN_DEPLOY_SERVER', 'true'))

param deployRegistry = true

param imageRepository = 'splitfunctions-functions'

param imageTag = readEnvironmentVariable('SPLITFN_IMAGE_TAG', 'dev')

param checkpointRetention = 3
param temporalWindowMiB = 256
param temporalCacheMiB = 2048

param maxDequeueCount = 5

param visibilityTimeoutSeconds = 300

param overlapCommits = true

param threads = 0
