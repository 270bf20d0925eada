output "queue_url" {
  description = "AIOPS_QUEUE_URL"
  value       = aws_sqs_queue.events.url
}

output "dead_letter_queue_url" {
  description = "The dead-letter queue (look here when the DLQ alarm fires)."
  value       = aws_sqs_queue.dlq.url
}

output "sns_topic_arn" {
  description = "AIOPS_SNS_TOPIC_ARN: subscribe your on-call endpoint."
  value       = aws_sns_topic.notifications.arn
}

output "incident_table" {
  description = "AIOPS_INCIDENT_TABLE"
  value       = aws_dynamodb_table.incidents.name
}

output "patterns_table" {
  description = "AIOPS_PATTERNS_TABLE"
  value       = aws_dynamodb_table.patterns.name
}

output "ecr_repository_url" {
  description = "Push the agent image here, tagged with var.image_tag."
  value       = aws_ecr_repository.agent.repository_url
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.agent.name
}

output "service_name" {
  description = "ECS service."
  value       = aws_ecs_service.agent.name
}

output "task_role_arn" {
  description = "The agent's identity (always a trusted principal)."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "The agent's own logs."
  value       = aws_cloudwatch_log_group.agent.name
}

output "console_alb_dns_name" {
  description = "The console ALB's DNS name (point console_url's host at it); empty when off."
  value       = var.console_enabled ? aws_lb.console[0].dns_name : ""
}
