// The server: Azure Functions on Container Apps (`Microsoft.App/containerApps` with kind `functionapp`),
// running the .NET isolated-worker image built from functions/Dockerfile on the GPU workload profile.
// One replica at most: the single-writer design (ARCHITECTURE.md, invariant 5) wants one instance
// working a run at a time; the run lease and ETag conditions still guard the moments when two
// revisions overlap during an update.

metadata name = 'SplitFunctions function app'
metadata description = 'Functions on Container Apps with a user-assigned identity, identity-based storage and at most one replica.'

@description('Required. Container app name: 2-32 lowercase letters, digits and hyphens.')
@minLength(2)
@maxLength(32)
param name string

@description('Optional. Location for the app.')
param location string = resourceGroup().location

@description('Optional. Tags for the app.')
param tags object = {}

@description('Required. Resource id of the Container Apps environment.')
param environmentId string

@description('Required. Workload profile to run on (the GPU profile, or Consumption for CPU only).')
param workloadProfileName string

@description('Required. Full image reference, e.g. `<registry>/splitfunctions-functions:<tag>`.')
param image string

@description('Optional. Registry login server to pull from with the identity (empty for a public image).')
param registryServer string = ''

@description('Required. Resource id of the user-assigned identity the app runs as.')
param identityResourceId string

@description('Required. Storage account the features queue lives in (scale rule).')
param storageAccountName string

@description('Required. Queue that drives scaling (StorageNames.FeaturesQueue).')
param featuresQueueName string

@description('Required. Name of the Application Insights component (same resource group).')
param appInsightsName string

@description('Required. Environment variables (app settings): objects with `name` and `value` or `secretRef`.')
param appSettings object[]

@description('Required. vCPUs per replica; must fit the workload profile.')
param cpu int

@description('Required. Memory per replica, e.g. `56Gi`; must fit the workload profile.')
param memory string

// Pull with the identity (AcrPull); no registry credentials for a public image.
var registries = empty(registryServer) ? [] : [{ server: registryServer, identity: identityResourceId }]

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource app 'Microsoft.App/containerApps@2025-07-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp'
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
      // One active revision: two revisions side by side would be two writers.
      activeRevisionsMode: 'Single'
      // No ingress: the only trigger is the `features` queue, so nothing needs to reach the app.
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
          name: 'functions'
          image: image
          env: appSettings
          resources: {
            cpu: cpu
            memory: memory
          }
        }
      ]
      scale: {
        minReplicas: 0
        maxReplicas: 1
        rules: [
          {
            name: 'features-queue'
            azureQueue: {
              accountName: storageAccountName
              queueName: featuresQueueName
              queueLength: 1
              identity: identityResourceId
            }
          }
        ]
      }
    }
  }
}

@description('The container app resource id.')
output resourceId string = app.id

@description('The container app name.')
output name string = app.name
