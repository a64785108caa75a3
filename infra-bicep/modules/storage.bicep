// Storage account for the exchange between hospitals and the server: one container and one reply
// queue per hospital, the shared `features` queue and its poison queue, and the `runs` container.
// Names follow core/Contract/StorageNames.cs (a test in tests/SplitFunctions.Tests.Integration/Deployment checks them).

import { hospitalIdType } from 'types.bicep'

metadata name = 'SplitFunctions storage'
metadata description = 'Storage account with Entra-only access, blob soft delete, per-hospital containers and queues, and a lifecycle rule for exchanged frames.'

@description('Required. Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Optional. Location for the account.')
param location string = resourceGroup().location

@description('Optional. Tags for the account.')
param tags object = {}

@description('Required. Hospital ids; each gets container `h-<id>` and queue `replies-<id>`.')
param hospitals hospitalIdType[]

@description('Optional. Days after which exchanged features, gradients and predictions are deleted.')
@minValue(1)
@maxValue(3650)
param exchangeRetentionDays int = 14

@description('Optional. Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 7

@description('Optional. Redundancy of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

// The names the code uses (StorageNames.cs); the deployment tests compare the names the compiled template creates with it.
var runsContainerName = 'runs'
var featuresQueueName = 'features'
var featuresPoisonQueueName = 'features-poison'
var featuresRejectionsQueueName = 'features-rejections'
var hospitalContainerPrefix = 'h-'
var repliesQueuePrefix = 'replies-'

// Folders inside `h-<hospital>` that hold exchanged frames (ARCHITECTURE.md, "Storage names").
var exchangeFolders = [
  'features'
  'gradients'
  'predictions'
]

resource storageAccount 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    // Microsoft Entra ID only: no account keys, no service SAS. Hospitals get an identity with
    // roles scoped to their own container and queues (docs/deploy.md, "Onboarding a hospital").
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    // Hospitals reach the account over the internet; restrict with network rules or private
    // endpoints where the hospitals' egress addresses are known (docs/deploy.md, "Security").
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    accessTier: 'Hot'
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storageAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource runsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = {
  parent: blobService
  name: runsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hospitalContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = [
  for hospital in hospitals: {
    parent: blobService
    name: '${hospitalContainerPrefix}${hospital}'
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storageAccount
  name: 'default'
}

resource featuresQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = {
  parent: queueService
  name: featuresQueueName
}

resource featuresPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = {
  parent: queueService
  name: featuresPoisonQueueName
}

// Why each poisoned message was poisoned: one JSON record per message (docs/architecture.md, "Poison messages").
resource featuresRejectionsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = {
  parent: queueService
  name: featuresRejectionsQueueName
}

resource repliesQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [
  for hospital in hospitals: {
    parent: queueService
    name: '${repliesQueuePrefix}${hospital}'
  }
]

// Lifecycle prefix filters are `<container>/<blob prefix>`. One rule per hospital keeps each rule
// within the limit on prefixes per rule; the `runs` container (checkpoints) is never touched.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2024-01-01' = if (!empty(hospitals)) {
  parent: storageAccount
  name: 'default'
  properties: {
    policy: {
      rules: [
        for (hospital, i) in hospitals: {
          // Rule names are alphanumeric only; the index keeps them unique.
          name: 'expireExchange${i}'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              // Spelled out: property for-expressions cannot be nested.
              prefixMatch: [
                '${hospitalContainerPrefix}${hospital}/${exchangeFolders[0]}/'
                '${hospitalContainerPrefix}${hospital}/${exchangeFolders[1]}/'
                '${hospitalContainerPrefix}${hospital}/${exchangeFolders[2]}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: exchangeRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    hospitalContainers
  ]
}

@description('The storage account name.')
output name string = storageAccount.name

@description('The storage account resource id.')
output resourceId string = storageAccount.id

@description('The blob service endpoint.')
output blobEndpoint string = storageAccount.properties.primaryEndpoints.blob

@description('The queue service endpoint.')
output queueEndpoint string = storageAccount.properties.primaryEndpoints.queue

@description('The container names, one per hospital, in the order of `hospitals`.')
output hospitalContainerNames string[] = [for (hospital, i) in hospitals: hospitalContainers[i].name]

@description('The name of the shared features queue.')
output featuresQueueName string = featuresQueue.name

@description('The name of the poison queue.')
output featuresPoisonQueueName string = featuresPoisonQueue.name

@description('The name of the runs container.')
output runsContainerName string = runsContainer.name
