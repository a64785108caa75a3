// Container Apps environment with workload profiles: the default Consumption profile plus one
// serverless GPU profile (T4 by default, A100 by parameter). GPU profiles need a workload-profiles
// environment, a region that offers serverless GPUs and GPU quota on the subscription.

metadata name = 'SplitFunctions Container Apps environment'
metadata description = 'Workload-profiles environment with a Consumption profile and a serverless GPU profile.'

@description('Required. Environment name.')
@minLength(2)
@maxLength(60)
param name string

@description('Optional. Location: one with serverless GPUs (see docs/deploy.md).')
param location string = resourceGroup().location

@description('Optional. Tags for the environment.')
param tags object = {}

@description('Required. Name of the Log Analytics workspace (same resource group) that receives the app logs.')
param logAnalyticsWorkspaceName string

@description('Optional. Serverless GPU: `T4` (NC8as-T4), `A100` (NC24-A100), or `None` for CPU only.')
@allowed([
  'T4'
  'A100'
  'None'
])
param gpuProfile string = 'T4'

var consumptionProfile = {
  name: 'Consumption'
  workloadProfileType: 'Consumption'
}

// The profile the server runs on, per `gpuProfile`.
var serverProfiles = {
  T4: {
    name: 'gpu-t4'
    workloadProfileType: 'Consumption-GPU-NC8as-T4'
  }
  A100: {
    name: 'gpu-a100'
    workloadProfileType: 'Consumption-GPU-NC24-A100'
  }
  None: consumptionProfile
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsWorkspaceName
}

resource environment 'Microsoft.App/managedEnvironments@2025-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    workloadProfiles: gpuProfile == 'None' ? [consumptionProfile] : [consumptionProfile, serverProfiles[gpuProfile]]
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: workspace.properties.customerId
        sharedKey: workspace.listKeys().primarySharedKey
      }
    }
    zoneRedundant: false
  }
}

@description('The environment resource id.')
output resourceId string = environment.id

@description('The environment name.')
output name string = environment.name

@description('The workload profile the server runs on.')
output serverWorkloadProfileName string = serverProfiles[gpuProfile].name
