// Alternative to the function app: an event-driven Container Apps job that runs the same image in
// `drain` mode whenever the `features` queue has messages (KEDA azure-queue rule). At most one
// execution at a time, for the same single-writer reason as the function app's one replica.

metadata name = 'SplitFunctions drain job'
metadata description = 'Event-driven Container Apps job with an azure-queue scale rule and at most one execution.'

@description('Required. Job name: 2-32 lowercase letters, digits and hyphens.')
@minLength(2)
@maxLength(32)
param name string

@description('Optional. Location for the job.')
param location string = resourceGroup().location

@description('Optional. Tags for the job.')
param tags object = {}

@description('Required. Resource id of the Container Apps environment.')
param environmentId string

@description('Required. Workload profile to run on.')
param workloadProfileName string

@description('Required. Full image reference.')
param image string

@description('Optional. Registry login server to pull from with the identity (empty for a public image).')
param registryServer string = ''

@description('Required. Resource id of the user-assigned identity the job runs as.')
param identityResourceId string

@description('Required. Storage account the features queue lives in (scale rule).')
param storageAccountName string

@description('Required. Queue that triggers executions (StorageNames.FeaturesQueue).')
param featuresQueueName string

@description('Required. Name of the Application Insights component (same resource group).')
param appInsightsName string

@description('Required. Environment variables: objects with `name` and `value` or `secretRef`.')
param appSettings object[]

@description('Required. Command that starts drain mode inside the image; must match functions/Dockerfile.')
param drainCommand string[]

@description('Required. vCPUs per replica; must fit the workload profile.')
param cpu int

@description('Required. Memory per replica; must fit the workload profile.')
param memory string

@description('Optional. Longest an execution may run, in seconds.')
@minValue(60)
@maxValue(86400)
param replicaTimeoutSeconds int = 3600

// Pull with the identity (AcrPull); no registry credentials for a public image.
var registries = empty(registryServer) ? [] : [{ server: registryServer, identity: identityResourceId }]

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource job 'Microsoft.App/jobs@2025-07-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: workloadProfileName
    configuration: {
      triggerType: 'Event'
      replicaTimeout: replicaTimeoutSeconds
      replicaRetryLimit: 1
      eventTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
        scale: {
          minExecutions: 0
          maxExecutions: 1
          pollingInterval: 30
          rules: [
            {
              name: 'features-queue'
              type: 'azure-queue'
              metadata: {
                accountName: storageAccountName
                queueName: featuresQueueName
                queueLength: '1'
              }
              identity: identityResourceId
            }
          ]
        }
      }
      registries: registries
      secrets: [
        {
          name: 'appinsights-connection-string'
          value: appInsights.properties.ConnectionString
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'drain'
          image: image
          command: drainCommand
          env: appSettings
          resources: {
            cpu: cpu
            memory: memory
          }
        }
      ]
    }
  }
}

@description('The job resource id.')
output resourceId string = job.id

@description('The job name.')
output name string = job.name
