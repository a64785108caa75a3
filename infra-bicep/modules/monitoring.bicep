// Log Analytics for the Container Apps environment's logs, and workspace-based Application Insights
// for the Functions host's telemetry.

metadata name = 'SplitFunctions monitoring'
metadata description = 'Log Analytics workspace and Application Insights.'

@description('Required. Log Analytics workspace name.')
@minLength(4)
@maxLength(63)
param workspaceName string

@description('Required. Application Insights component name.')
param appInsightsName string

@description('Optional. Location for the resources.')
param location string = resourceGroup().location

@description('Optional. Tags for the resources.')
param tags object = {}

@description('Optional. Days the workspace keeps logs.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
  }
}

@description('The workspace resource id.')
output workspaceResourceId string = workspace.id

@description('The workspace name.')
output workspaceName string = workspace.name

@description('The Application Insights resource id.')
output appInsightsResourceId string = appInsights.id

@description('The Application Insights component name.')
output appInsightsName string = appInsights.name
