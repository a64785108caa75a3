// SplitFunctions in Azure: storage for the exchange with the hospitals, Key Vault for their keys, a
// user-assigned identity, monitoring, an optional registry, a Container Apps environment with a
// serverless GPU profile, and the server (Functions on Container Apps, or the drain job).
// Deploy: docs/deploy.md. The app settings below must match core/Contract/FunctionSettings.cs
// (tests/SplitFunctions.Tests.Integration/Deployment checks it on the compiled template, and the storage names and role ids).

targetScope = 'resourceGroup'

metadata name = 'SplitFunctions'
metadata description = 'Split learning server for hospitals: storage, Key Vault, identity, monitoring, registry, Container Apps with serverless GPU.'

import { hospitalIdType } from 'modules/types.bicep'

@description('The Microsoft Entra principal a hospital agent signs in as.')
type hospitalPrincipalType = {
  @description('Required. The hospital id; must be one of `hospitals`.')
  hospitalId: hospitalIdType

  @description('Required. Object id of the principal (a service principal with a certificate, usually).')
  principalId: string

  @description('Optional. Kind of principal; ServicePrincipal when omitted.')
  principalType: ('ServicePrincipal' | 'Group' | 'User')?
}

@description('Optional. Location for all resources; one with serverless GPUs when `gpuProfile` is not None.')
param location string = resourceGroup().location

@description('Required. Short lowercase prefix for resource names (letters and digits).')
@minLength(2)
@maxLength(8)
param namePrefix string

@description('Optional. Tags for all resources.')
param tags object = {}

@description('Required. Hospitals taking part: each gets container `h-<id>` and queue `replies-<id>`.')
param hospitals hospitalIdType[]

@description('Optional. Principals the hospital agents sign in as; each gets roles on its own container and queues only.')
param hospitalPrincipals hospitalPrincipalType[] = []

@description('Optional. Days after which exchanged features, gradients and predictions are deleted from `h-<hospital>`.')
@minValue(1)
@maxValue(3650)
param exchangeRetentionDays int = 14

@description('Optional. Serverless GPU for the server: T4 (Consumption-GPU-NC8as-T4), A100 (Consumption-GPU-NC24-A100), or None (CPU, Consumption profile).')
@allowed([
  'T4'
  'A100'
  'None'
])
param gpuProfile string = 'T4'

@description('Optional. How the server runs: `functionapp` (Functions on Container Apps, queue trigger) or `job` (event-driven Container Apps job in drain mode).')
@allowed([
  'functionapp'
  'job'
])
param hostingMode string = 'functionapp'

@description('Optional. Deploy the server. Set false on the first deployment, push the image, then deploy again with true.')
param deployServer bool = true

@description('Optional. Create a container registry for the image. When false, set `externalImage`.')
param deployRegistry bool = true

@description('Optional. Image repository in the created registry.')
param imageRepository string = 'splitfunctions-functions'

@description('Optional. Image tag in the created registry.')
param imageTag string = 'dev'

@description('Optional. Full image reference when `deployRegistry` is false (a registry the environment can pull from).')
param externalImage string = ''

@description('Optional. Command that starts drain mode inside the image (hostingMode `job`); must match functions/Dockerfile.')
param drainCommand string[] = [
  'dotnet'
  '/home/site/wwwroot/SplitFunctions.Functions.dll'
  'drain'
]

@description('Optional. libtorch intra-op threads; 0 means the processor count.')
@minValue(0)
@maxValue(64)
param threads int = 0

@description('Optional. Checkpoints kept per run besides `latest`.')
@minValue(0)
@maxValue(100)
param checkpointRetention int = 3

@description('Optional. Temporal mode: MiB of sealed feature chunks per streamed window (two are in memory at once); bounds the function\'s memory.')
@minValue(1)
param temporalWindowMiB int = 256

@description('Optional. Temporal mode: MiB of decrypted feature chunks kept between epochs, so data that fits is read from storage once per run (0 reads every epoch); bounds the function\'s memory with the window.')
@minValue(0)
param temporalCacheMiB int = 2048

@description('Optional. Deliveries after which a failing message is poisoned, in drain mode and in the function app (overrides host.json maxDequeueCount).')
@minValue(1)
@maxValue(100)
param maxDequeueCount int = 5

@description('Optional. Drain mode: visibility timeout of a received message, in seconds.')
@minValue(30)
@maxValue(3600)
param visibilityTimeoutSeconds int = 300

@description('Optional. Drain mode: begin the next message while the current one\'s reply, journal entry and deletion finish (the server computes instead of waiting on storage).')
param overlapCommits bool = true

var suffix = uniqueString(resourceGroup().id, namePrefix)
var names = {
  storage: take('${namePrefix}st${suffix}', 24)
  keyVault: take('${namePrefix}kv${suffix}', 24)
  registry: take('${namePrefix}acr${suffix}', 50)
  identity: '${namePrefix}-server-id'
  workspace: '${namePrefix}-log'
  appInsights: '${namePrefix}-appi'
  environment: '${namePrefix}-cae'
  server: '${namePrefix}-server'
}

// Replica size per profile: a serverless GPU replica gets the whole GPU's vCPUs and memory.
var serverResources = {
  T4: {
    cpu: 8
    memory: '56Gi'
  }
  A100: {
    cpu: 24
    memory: '220Gi'
  }
  None: {
    cpu: 4
    memory: '8Gi'
  }
}

// `cuda`, not `auto`: on a GPU profile a missing GPU should fail loudly, not train slowly on CPU.
var device = gpuProfile == 'None' ? 'cpu' : 'cuda'

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    hospitals: hospitals
    exchangeRetentionDays: exchangeRetentionDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: tags
  }
}

module registry 'modules/registry.bicep' = if (deployRegistry) {
  name: 'registry'
  params: {
    name: names.registry
    location: location
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    registryName: deployRegistry ? names.registry : ''
  }
  dependsOn: [
    registry
  ]
}

module hospitalAccess 'modules/hospital-access.bicep' = [
  for principal in hospitalPrincipals: {
    name: 'hospital-access-${principal.hospitalId}'
    params: {
      storageAccountName: storage.outputs.name
      hospitalId: principal.hospitalId
      principalId: principal.principalId
      principalType: principal.?principalType ?? 'ServicePrincipal'
    }
  }
]

module environment 'modules/containerapps-env.bicep' = {
  name: 'containerapps-env'
  params: {
    name: names.environment
    location: location
    tags: tags
    logAnalyticsWorkspaceName: monitoring.outputs.workspaceName
    gpuProfile: gpuProfile
  }
}

var image = deployRegistry ? '${registry!.outputs.loginServer}/${imageRepository}:${imageTag}' : externalImage
var registryServer = deployRegistry ? registry!.outputs.loginServer : ''

// Every environment variable the server gets. The deployment tests check the list the compiled function app and
// job get: each name is either in FunctionSettings.All or in their allow-list of platform settings.
var appSettings = [
  // Platform: the Functions host starts the .NET isolated worker (functions.metadata, worker.config.json).
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'dotnet-isolated'
  }
  // Platform: host.json's maxDequeueCount, from the same parameter as drain mode's, so both hosts poison after one count.
  {
    name: 'AzureFunctionsJobHost__extensions__queues__maxDequeueCount'
    value: string(maxDequeueCount)
  }
  // Platform: where the Functions host sends telemetry (a secret of the app, see functionapp.bicep).
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    secretRef: 'appinsights-connection-string'
  }
  // Identity-based storage: no connection string exists (shared key access is off).
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.outputs.name
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.outputs.blobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storage.outputs.queueEndpoint
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.outputs.clientId
  }
  {
    name: 'SplitFunctions__KeyVaultUri'
    value: keyVault.outputs.uri
  }
  {
    name: 'SplitFunctions__Device'
    value: device
  }
  {
    name: 'SplitFunctions__Threads'
    value: string(threads)
  }
  {
    name: 'SplitFunctions__CheckpointRetention'
    value: string(checkpointRetention)
  }
  {
    name: 'SplitFunctions__MaxDequeueCount'
    value: string(maxDequeueCount)
  }
  {
    name: 'SplitFunctions__VisibilityTimeoutSeconds'
    value: string(visibilityTimeoutSeconds)
  }
  {
    name: 'SplitFunctions__TemporalWindowMiB'
    value: string(temporalWindowMiB)
  }
  {
    name: 'SplitFunctions__TemporalCacheMiB'
    value: string(temporalCacheMiB)
  }
  {
    name: 'SplitFunctions__OverlapCommits'
    value: string(overlapCommits)
  }
]

module functionApp 'modules/functionapp.bicep' = if (deployServer && hostingMode == 'functionapp') {
  name: 'functionapp'
  params: {
    name: names.server
    location: location
    tags: tags
    environmentId: environment.outputs.resourceId
    workloadProfileName: environment.outputs.serverWorkloadProfileName
    image: image
    registryServer: registryServer
    identityResourceId: identity.outputs.resourceId
    storageAccountName: storage.outputs.name
    featuresQueueName: storage.outputs.featuresQueueName
    appInsightsName: monitoring.outputs.appInsightsName
    appSettings: appSettings
    cpu: serverResources[gpuProfile].cpu
    memory: serverResources[gpuProfile].memory
  }
  // The identity must be able to pull the image and read storage before the first revision starts.
  dependsOn: [
    roles
  ]
}

module queueJob 'modules/queuejob.bicep' = if (deployServer && hostingMode == 'job') {
  name: 'queuejob'
  params: {
    name: names.server
    location: location
    tags: tags
    environmentId: environment.outputs.resourceId
    workloadProfileName: environment.outputs.serverWorkloadProfileName
    image: image
    registryServer: registryServer
    identityResourceId: identity.outputs.resourceId
    storageAccountName: storage.outputs.name
    featuresQueueName: storage.outputs.featuresQueueName
    appInsightsName: monitoring.outputs.appInsightsName
    appSettings: appSettings
    drainCommand: drainCommand
    cpu: serverResources[gpuProfile].cpu
    memory: serverResources[gpuProfile].memory
  }
  dependsOn: [
    roles
  ]
}

@description('Storage account name (agents: account of their container and queues).')
output storageAccountName string = storage.outputs.name

@description('Blob service endpoint.')
output blobEndpoint string = storage.outputs.blobEndpoint

@description('Queue service endpoint.')
output queueEndpoint string = storage.outputs.queueEndpoint

@description('Key Vault URI holding the hospitals\' keys.')
output keyVaultUri string = keyVault.outputs.uri

@description('Key Vault name (onboarding writes hospital keys here).')
output keyVaultName string = keyVault.outputs.name

@description('Name of the server: the function app (hostingMode functionapp) or the job (hostingMode job).')
output serverName string = names.server

@description('Name of the function app; empty when the server is not deployed as one.')
output functionAppName string = deployServer && hostingMode == 'functionapp' ? names.server : ''

@description('Client id of the server identity.')
output serverIdentityClientId string = identity.outputs.clientId

@description('Registry login server to push the image to; empty without a registry.')
output registryLoginServer string = registryServer

@description('Registry name; empty without a registry.')
output registryName string = deployRegistry ? names.registry : ''

@description('Container per hospital, in the order of `hospitals`.')
output hospitalContainers string[] = storage.outputs.hospitalContainerNames
