// What the app's identity may do on the Azure ML workspace it manages, deployed into the
// workspace's resource group: a custom role with exactly the actions the app uses, and
// Monitoring Reader for the endpoints' platform metrics. Action strings from Microsoft's
// "Azure permissions for AI + machine learning" (Microsoft.MachineLearningServices) reference.
// The built-in alternative to the custom role is AzureML Data Scientist
// (f6c7c914-8db3-469d-8ca1-694a8f32e121), which also lets the identity delete endpoints and
// much else in the workspace: see docs/azure.md, "Roles created by azd up".
// API versions: Azure/bicep-types-az generated/authorization/microsoft.authorization/2022-04-01/types.md,
// generated/machinelearningservices/microsoft.machinelearningservices/2024-10-01/types.md.

param principalId string
param workspaceName string
@description('Also grant what the deployment lifecycle needs in the workspace and its resource group (delete, logs, inline environments, autoscale settings).')
param lifecycleActions bool = false

var roles = {
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05' // Monitoring Reader
}

// Read the workspace (azure-ai-ml GETs it before every create-or-update), read and update online
// endpoints (traffic) and deployments (instance count), follow their long-running operations.
var rolloutActions = [
  'Microsoft.MachineLearningServices/workspaces/read'
  'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read'
  'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write'
  'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read'
  'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write'
  'Microsoft.MachineLearningServices/workspaces/onlineendpoints/operationsstatus/read'
  'Microsoft.MachineLearningServices/workspaces/onlineendpoints/operationresults/read'
  'Microsoft.MachineLearningServices/workspaces/onlineendpoints/deployments/operationsstatus/read'
  'Microsoft.MachineLearningServices/workspaces/onlineendpoints/deployments/operationresults/read'
]

// The deployment lifecycle (AzureMLLifecycle in adapters/azure_ml.py), on top of the above: creating
// an endpoint or a deployment and scaling it are onlineEndpoints/write and deployments/write, already
// granted. Action names from the same reference; which action a request needs is ARM's rule
// (the request path's resource type, plus read for GET, write for PUT, delete for DELETE, the
// POST's name + /action for POST), so the mapping is inferred, not observed on Azure.
var lifecycleWorkspaceActions = [
  // DELETE {ws}/onlineEndpoints/{e}/deployments/{d} (begin_delete; cleanup "delete")
  'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/delete'
  // POST {ws}/onlineEndpoints/{e}/deployments/{d}/getLogs (get_logs: the container's log tail)
  'Microsoft.MachineLearningServices/workspaces/onlineendpoints/deployments/getlogs/action'
  // GET {ws}/environments/CliV2AnonymousEnvironment/versions/{hash} (reading back an inline environment)
  'Microsoft.MachineLearningServices/workspaces/environments/versions/read'
  // PUT of the same, which azure-ai-ml sends before the deployment PUT for {image, conda_file}
  'Microsoft.MachineLearningServices/workspaces/environments/versions/write'
]

// Autoscale settings are resources of the resource group, not children of the workspace, so
// they get their own role, assigned on the resource group, only with lifecycleActions.
var lifecycleAutoscaleActions = [
  'Microsoft.Insights/autoscalesettings/read'
  'Microsoft.Insights/autoscalesettings/write'
  'Microsoft.Insights/autoscalesettings/delete'
]

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource endpointOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'aml-rollout-endpoint-operator')
  properties: {
    roleName: 'aml-rollout endpoint operator (${resourceGroup().name})'
    description: 'Read the Azure ML workspace; read and update online endpoints and deployments; read their operations. With the lifecycle actions: delete deployments, read their logs, read and write environment versions.'
    type: 'CustomRole'
    permissions: [
      {
        actions: lifecycleActions ? concat(rolloutActions, lifecycleWorkspaceActions) : rolloutActions
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource endpointOperatorOnWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, 'aml-rollout-endpoint-operator')
  scope: workspace
  properties: {
    roleDefinitionId: endpointOperator.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Platform metrics of every online endpoint in the workspace (child resources inherit it).
resource monitoringReaderOnWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, roles.monitoringReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource autoscaleOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (lifecycleActions) {
  name: guid(resourceGroup().id, 'aml-rollout-autoscale-operator')
  properties: {
    roleName: 'aml-rollout autoscale operator (${resourceGroup().name})'
    description: 'Read, write and delete autoscale settings of online deployments.'
    type: 'CustomRole'
    permissions: [
      {
        actions: lifecycleAutoscaleActions
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource autoscaleOperatorOnGroup 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (lifecycleActions) {
  name: guid(resourceGroup().id, principalId, 'aml-rollout-autoscale-operator')
  properties: {
    roleDefinitionId: autoscaleOperator.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output customRoleId string = endpointOperator.id
